"""Synthetic degradations for restoration training: rain streaks, Gaussian noise, motion blur and haze.

Every degradation is a function ``fn(img, rng, **params) -> img`` on an ``H x W x 3`` float32 image with
values in [0, 1]; it returns a new float32 image of the same shape, clipped to [0, 1]. The functions treat
the three channels alike (haze uses a grey airlight), so BGR and RGB images give the same result.

A parameter given as a number is used as is; given as ``[low, high]`` it is drawn uniformly from that
range for every image, with the ``numpy.random.Generator`` passed in (so a seeded generator reproduces a
degradation exactly). A number, and both ends of a range, must lie in the parameter's documented range
(:data:`PARAM_RANGES`). Options files list degradations as dicts, applied in order::

    degradations:
      - {type: rain, density: [0.01, 0.03], length: [10, 30], angle: [-20, 20]}
      - {type: noise, sigma: [5, 50]}
"""
import inspect
import math
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np

Param = Union[float, Sequence[float]]


def sample(rng: np.random.Generator, value: Param) -> float:
    """``value`` itself, or a uniform draw from ``[low, high]`` when it is a two-element range."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] > value[1]:
            raise ValueError(f'A parameter range must be [low, high] with low <= high, got {list(value)}.')
        return float(rng.uniform(value[0], value[1]))
    return float(value)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised straight-line kernel (sums to 1).

    Args:
        length: Line length in pixels (>= 1); the kernel is the smallest odd square that holds it.
        angle: Direction in degrees, counter-clockwise from the horizontal (0: horizontal, 90: vertical).

    Returns:
        float32 array of shape (k, k), k odd.
    """
    size = max(1, int(np.ceil(length)) // 2 * 2 + 1)
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    dx, dy = np.cos(np.deg2rad(angle)), -np.sin(np.deg2rad(angle))
    half = (length - 1) / 2
    end1 = (int(round(centre - half * dx)), int(round(centre - half * dy)))
    end2 = (int(round(centre + half * dx)), int(round(centre + half * dy)))
    cv2.line(kernel, end1, end2, 1.0, thickness=1)
    return kernel / kernel.sum()


def add_gaussian_noise(img: np.ndarray, rng: np.random.Generator, sigma: Param = (5, 50)) -> np.ndarray:
    """Additive white Gaussian noise, independent per pixel and channel.

    Args:
        img: H x W x 3 float32 in [0, 1].
        rng: Random generator.
        sigma: Standard deviation on the 0-255 scale (as in BasicSR's ``noise_range``), 0 to 255; typical 5 to 50.

    Returns:
        H x W x 3 float32 in [0, 1] (clipped, so the measured std is a little lower near black and white).
    """
    std = sample(rng, sigma) / 255.
    noise = rng.standard_normal(img.shape, dtype=np.float32) * std
    return np.clip(img + noise, 0, 1).astype(np.float32)


def motion_blur(img: np.ndarray,
                rng: np.random.Generator,
                length: Param = (5, 21),
                angle: Param = (0, 180)) -> np.ndarray:
    """Linear (camera-shake) motion blur: the image convolved with a straight line.

    Args:
        img: H x W x 3 float32 in [0, 1].
        rng: Random generator.
        length: Blur length in pixels, >= 1 (1 leaves the image unchanged); typical 5 to 21.
        angle: Direction of motion in degrees from the horizontal, -180 to 180 (a line: 0 and 180 are alike).

    Returns:
        H x W x 3 float32 in [0, 1]; borders are reflected.
    """
    kernel = line_kernel(sample(rng, length), sample(rng, angle))
    return np.clip(cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101), 0, 1).astype(np.float32)


def add_rain(img: np.ndarray,
             rng: np.random.Generator,
             density: Param = (0.01, 0.03),
             length: Param = (10, 30),
             angle: Param = (-20, 20),
             brightness: Param = (0.6, 0.9),
             width: Param = 1) -> np.ndarray:
    """Rain streaks: random drops smeared along one direction and added to the image.

    Args:
        img: H x W x 3 float32 in [0, 1].
        rng: Random generator.
        density: Fraction of pixels that seed a drop, 0 to 1; typical 0.005 (light) to 0.05 (heavy).
        length: Streak length in pixels, >= 1; typical 10 to 40.
        angle: Streak direction in degrees from the vertical (negative: leaning left), -90 to 90; typical -30 to 30.
        brightness: Peak streak intensity added to the image, 0 to 1.
        width: Streak thickness in pixels, >= 1 (Gaussian blur of sigma ``(width - 1) / 2`` across the streak);
            1 gives hairline streaks.

    Returns:
        H x W x 3 float32 in [0, 1]; streaks are grey (the same on all channels) and only brighten.
    """
    height, width_px = img.shape[:2]
    drops = (rng.random((height, width_px)) < sample(rng, density)) * rng.uniform(0.5, 1, (height, width_px))
    kernel = line_kernel(sample(rng, length), 90 + sample(rng, angle))
    streaks = cv2.filter2D(drops.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    sigma = (sample(rng, width) - 1) / 2
    if sigma > 0:
        streaks = cv2.GaussianBlur(streaks, (0, 0), sigma)
    peak = streaks.max()
    if peak > 0:
        streaks = streaks * (sample(rng, brightness) / peak)
    return np.clip(img + streaks[..., None], 0, 1).astype(np.float32)


def add_haze(img: np.ndarray,
             rng: np.random.Generator,
             beta: Param = (0.5, 1.5),
             airlight: Param = (0.7, 1.0),
             depth: Param = (0.5, 1.0)) -> np.ndarray:
    """Haze by the atmospheric scattering model ``I = J * t + A * (1 - t)``, ``t = exp(-beta * d)``.

    Without a depth map the scene depth ``d`` rises linearly from ``depth_near`` at the bottom row to 1 at
    the top row (ground near, sky far), with ``depth_near = 1 - depth``.

    Args:
        img: H x W x 3 float32 in [0, 1] (the clean scene ``J``).
        rng: Random generator.
        beta: Scattering coefficient, >= 0 (0: no haze); typical 0.5 (light) to 2 (dense); RESIDE uses 0.6 to 1.8.
        airlight: Grey atmospheric light ``A``, 0 to 1; typical 0.7 to 1.
        depth: Depth range across the image, 0 (uniform haze) to 1 (the bottom row is haze-free).

    Returns:
        H x W x 3 float32 in [0, 1]: contrast scaled by ``t``, pulled toward ``A``.
    """
    height = img.shape[0]
    near = 1 - sample(rng, depth)
    rows = np.linspace(1, near, height, dtype=np.float32)
    transmission = np.exp(-sample(rng, beta) * rows)[:, None, None]
    light = sample(rng, airlight)
    return np.clip(img * transmission + light * (1 - transmission), 0, 1).astype(np.float32)


DEGRADATIONS: Dict[str, Callable[..., np.ndarray]] = {
    'rain': add_rain,
    'noise': add_gaussian_noise,
    'motion_blur': motion_blur,
    'haze': add_haze,
}


# Allowed values of each parameter, inclusive; a [low, high] range must lie inside. Parameters of the functions
# above that are missing here take any finite number.
PARAM_RANGES: Dict[str, Dict[str, Tuple[float, float]]] = {
    'rain': {'density': (0, 1), 'length': (1, math.inf), 'angle': (-90, 90), 'brightness': (0, 1),
             'width': (1, math.inf)},
    'noise': {'sigma': (0, 255)},
    'motion_blur': {'length': (1, math.inf), 'angle': (-180, 180)},
    'haze': {'beta': (0, math.inf), 'airlight': (0, 1), 'depth': (0, 1)},
}


def _range_text(low: float, high: float) -> str:
    if high == math.inf:
        return f'>= {low:g}'
    return f'between {low:g} and {high:g}'


def degradation_problems(specs: Any) -> List[str]:
    """Every problem of a ``degradations`` option, one line each (empty when it is valid).

    A valid option is a list of dicts, each with a known ``type`` and known parameters, each parameter a finite
    number or a ``[low, high]`` range inside the parameter's allowed range (:data:`PARAM_RANGES`).
    """
    if not isinstance(specs, (list, tuple)):
        return [f'degradations must be a list (use [] for clean->clean pairs), got {specs!r}.']
    problems = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or 'type' not in spec:
            problems.append(f'degradations[{i}] must be a dict with a "type" key, got {spec!r}.')
            continue
        kind = spec['type']
        if kind not in DEGRADATIONS:
            problems.append(f'degradations[{i}]: unknown type {kind!r}; choose from {sorted(DEGRADATIONS)}.')
            continue
        params = {k: v for k, v in spec.items() if k != 'type'}
        allowed = list(inspect.signature(DEGRADATIONS[kind]).parameters)[2:]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            problems.append(f'degradations[{i}] ({kind}): unknown parameter(s) {unknown}; allowed: {allowed}.')
        for key, value in params.items():
            if key in allowed:
                problems += _value_problems(f'degradations[{i}]', kind, key, value)
    return problems


def _value_problems(where: str, kind: str, key: str, value: Any) -> List[str]:
    try:
        sample(np.random.default_rng(0), value)
    except (TypeError, ValueError):
        return [f'{where} ({kind}): bad {key} {value!r}; expected a number or [low, high] with low <= high.']
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    low, high = PARAM_RANGES[kind].get(key, (-math.inf, math.inf))
    if all(math.isfinite(v) and low <= v <= high for v in values):
        return []
    return [f'{where}.{key} ({kind}): {value!r} is out of range; {key} must be {_range_text(low, high)}.']


def check_degradations(specs: Any) -> List[Dict[str, Any]]:
    """Validate a ``degradations`` option (see :func:`degradation_problems`).

    Returns:
        The specs as a list of dicts (copies).

    Raises:
        ValueError: listing every problem, one per line, each naming the entry (``degradations[i]``), the
            parameter, the value and what is allowed.
    """
    problems = degradation_problems(specs)
    if problems:
        raise ValueError('\n'.join(problems))
    return [dict(spec) for spec in specs]


def apply_degradations(img: np.ndarray, specs: Sequence[Dict[str, Any]], rng: np.random.Generator) -> np.ndarray:
    """Apply degradations in order (see :func:`check_degradations` for ``specs``).

    Args:
        img: H x W x 3 float32 in [0, 1]; not modified.
        specs: Dicts ``{type: <name>, <param>: <value or [low, high]>, ...}``; empty means identity.
        rng: Random generator that all draws come from.

    Returns:
        A new H x W x 3 float32 image in [0, 1].
    """
    out = img.copy()
    for spec in specs:
        params = {k: v for k, v in spec.items() if k != 'type'}
        out = DEGRADATIONS[spec['type']](out, rng, **params)
    return out
