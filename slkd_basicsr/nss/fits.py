"""Moment-matching fits of generalised Gaussian (GGD) and asymmetric generalised Gaussian (AGGD) distributions."""
from functools import lru_cache
from typing import Tuple

import torch

from .device import device_constant, full_precision

# How distribution shapes are reported: reference grid search, differentiable inverse, or the moment ratio itself.
SHAPE_METHODS = ('grid', 'interp', 'ratio')
# Shape grid of the reference BRISQUE code (MATLAB 0.2:0.001:10).
SHAPE_GRID_START, SHAPE_GRID_STEP, SHAPE_GRID_SIZE = 0.2, 0.001, 9801
# Coarser grid for the differentiable inverse: consecutive ratios must stay distinct in float32.
SMOOTH_SHAPE_STEP, SMOOTH_SHAPE_SIZE = 0.02, 491


def _safe_div(num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    """``num / (den + eps)``; with eps = 0 a zero denominator gives 0 instead of NaN (dens are never negative)."""
    return num / (den + eps).clamp_min(torch.finfo(den.dtype).tiny)


def _log_gamma_ratio(shape: torch.Tensor) -> torch.Tensor:
    """``log(Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)))``, the generalised Gaussian moment ratio E|x|^2 / E[x^2]."""
    inv = 1.0 / shape
    return 2 * torch.lgamma(2 * inv) - torch.lgamma(inv) - torch.lgamma(3 * inv)


@lru_cache(maxsize=None)
def _shape_table(start: float, step: float, size: int) -> torch.Tensor:
    """2 x size float64: the shape grid (row 0) and its increasing ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    shapes = start + step * torch.arange(size, dtype=torch.float64)
    return torch.stack([shapes, _log_gamma_ratio(shapes).exp()])


@lru_cache(maxsize=None)
def _reciprocal_shape_table(start: float, step: float, size: int) -> torch.Tensor:
    """The reference's search table, 2 x size float64: the shape grid decreasing (row 0) and the increasing
    reciprocal ratio Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2 (row 1)."""
    shapes, ratios = _shape_table(start, step, size)
    return torch.stack([shapes.flip(0), ratios.reciprocal().flip(0)])


def _nearest_on_grid(value: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Grid entry (row 0 of the float64 ``table``) whose value (row 1, increasing) is nearest to ``value``; ties go
    to the first entry. Searched in float64: the reference grid's 9801 ratios are not distinct in float32."""
    grid, ratios = table
    value64 = value.detach().to(torch.float64)
    upper = torch.searchsorted(ratios, value64.contiguous()).clamp(1, ratios.numel() - 1)
    lower = upper - 1
    pick_upper = (ratios[upper] - value64).abs() < (value64 - ratios[lower]).abs()
    return grid[torch.where(pick_upper, upper, lower)].to(value.dtype)


def _interp_on_grid(value: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear inverse of the monotone ``table`` (grid row 0, increasing values row 1, both in ``value``'s
    dtype): differentiable in ``value``, clamped to the grid ends."""
    grid, values = table
    upper = torch.searchsorted(values, value.detach().contiguous()).clamp(1, values.numel() - 1)
    t0, t1 = values[upper - 1], values[upper]
    frac = ((value - t0) / (t1 - t0)).clamp(0.0, 1.0)
    return grid[upper - 1] + frac * (grid[upper] - grid[upper - 1])


@full_precision
def solve_shape(ratio: torch.Tensor, method: str) -> torch.Tensor:
    """Generalised Gaussian shape ``a`` with Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) = ratio.

    Args:
        ratio: any shape, values in (0, 0.75); E|x|^2 / E[x^2] for a symmetric fit.
        method: 'grid' = nearest point of the reference grid 0.2:0.001:10 (not differentiable); 'interp' (or
            'ratio', whose callers still need the shape) = monotone piecewise-linear interpolation of the inverse
            on a 0.02 grid, clamped to [0.2, 10] (differentiable).

    Returns:
        shapes in [0.2, 10] of the shape of ``ratio``, in its compute dtype (the table is never coarser).
    """
    if method not in SHAPE_METHODS:
        raise ValueError(f'shape method must be one of {SHAPE_METHODS}, got {method!r}')
    if method == 'grid':
        table = device_constant(
            _shape_table, SHAPE_GRID_START, SHAPE_GRID_STEP, SHAPE_GRID_SIZE, like=ratio, dtype=torch.float64)
        return _nearest_on_grid(ratio, table)
    return _interp_on_grid(ratio, device_constant(_shape_table, SHAPE_GRID_START, SMOOTH_SHAPE_STEP,
                                                  SMOOTH_SHAPE_SIZE, like=ratio))


@full_precision
def fit_ggd(x: torch.Tensor, method: str, eps: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Moment-matching fit of a zero-mean generalised Gaussian over the last dimension of ``x``.

    The reference matches E[x^2] / E|x|^2 against Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2 by nearest value;
    'grid' reproduces that metric, 'interp' inverts the reciprocal ratio smoothly.

    Args:
        x: ... x N samples, any range.
        method: see :data:`SHAPE_METHODS`; 'ratio' reports E|x|^2 / E[x^2] (a monotone function of the shape,
            in [0, 0.75], better conditioned as a training target than the shape itself).

    Returns:
        shape ``a`` (or its ratio) and variance ``E[x^2]``, each of shape ``x.shape[:-1]``, in the compute dtype.
    """
    # norms read x once each, with no squared or absolute copy of it
    variance = torch.linalg.vector_norm(x, 2, dim=-1).square() / x.shape[-1]
    mean_abs = torch.linalg.vector_norm(x, 1, dim=-1) / x.shape[-1]
    if method == 'grid':
        # The reference is nearest in E[x^2]/E|x|^2, which is decreasing in a: search the reversed reciprocal.
        table = device_constant(
            _reciprocal_shape_table, SHAPE_GRID_START, SHAPE_GRID_STEP, SHAPE_GRID_SIZE, like=x, dtype=torch.float64)
        return _nearest_on_grid(_safe_div(variance, mean_abs.square(), 0.0), table), variance
    ratio = _safe_div(mean_abs.square(), variance, eps)
    return (ratio if method == 'ratio' else solve_shape(ratio, method)), variance


def moment_rows(samples: torch.Tensor) -> torch.Tensor:
    """An empty ... x 4 x N buffer for :func:`signed_moments` of ``samples`` (... x N), its last row set to ones."""
    rows = samples.new_empty(*samples.shape[:-1], 4, samples.shape[-1])
    rows[..., 3, :] = 1
    return rows


def fill_sign_rows(rows: torch.Tensor) -> None:
    """Overwrite rows 1 and 2 of a :func:`moment_rows` buffer with sign(x) and min(x, 0) of its row 0."""
    x = rows[..., 0, :]
    torch.sign(x, out=rows[..., 1, :])
    torch.clamp(x, max=0, out=rows[..., 2, :])


def signed_moments(rows: torch.Tensor) -> torch.Tensor:
    """Sums over N samples of [x^2 on x < 0, x^2 on x > 0, |x|, x^2] and counts of x < 0, x > 0: ... x 6.

    ``rows`` (... x 4 x N, from :func:`moment_rows`) holds the samples x in row 0; rows 1 and 2 are
    overwritten by :func:`fill_sign_rows`. Every sum is then an entry of the rows' Gram matrix, so one matrix
    product reads the samples once instead of one masked pass per statistic (x.sign = sum |x|, sign.sign =
    count of non-zeros, sign.1 = positives - negatives).
    """
    fill_sign_rows(rows)
    gram = rows @ rows.transpose(-1, -2)
    left, square, nonzero, balance = gram[..., 2, 2], gram[..., 0, 0], gram[..., 1, 1], gram[..., 1, 3]
    return torch.stack([left, square - left, gram[..., 0, 1], square, (nonzero - balance) / 2,
                        (nonzero + balance) / 2], dim=-1)


def signed_moments_grad(rows: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Gradient wrt x of :func:`signed_moments` (its counts are piecewise constant) given ``grad`` (..., 6).

    ``rows`` is as :func:`signed_moments` left it. d/dx = 2 x (g_right + g_square) + sign(x) g_abs
    + 2 min(x, 0) (g_left - g_right): one matrix product with the first three rows. Returns ... x N.
    """
    g_left, g_right, g_abs, g_square = grad[..., :4].unbind(-1)
    coefficients = torch.stack([2 * (g_right + g_square), g_abs, 2 * (g_left - g_right)], dim=-1)
    return (coefficients[..., None, :] @ rows[..., :3, :]).squeeze(-2)


@full_precision
def aggd_from_moments(moments: torch.Tensor, count: int, method: str, eps: float) -> torch.Tensor:
    """Moment-matching fit of an asymmetric generalised Gaussian from :func:`signed_moments` of its samples.

    Args:
        moments: ... x 6 sums of ``count`` samples.
        method: see :func:`fit_ggd`; with 'ratio' the first output is the normalised moment ratio r_hat_norm.

    Returns:
        ... x 4 in the compute dtype: shape nu, mean eta = (sr - sl) Gamma(2/nu) / sqrt(Gamma(1/nu) Gamma(3/nu)),
        left variance sl^2 = E[x^2 | x < 0] and right variance sr^2 = E[x^2 | x > 0] (0 when no such sample).
    """
    left_sum, right_sum, abs_sum, square_sum, n_left, n_right = moments.unbind(-1)
    # an empty side has a zero sum: dividing by at least 1 keeps its value 0 and its gradient finite (a tiny
    # denominator would turn the cancelling left/right terms of the backward pass into inf - inf)
    left_var = left_sum / n_left.clamp_min(1)
    right_var = right_sum / n_right.clamp_min(1)
    left_std, right_std = (left_var + eps).sqrt(), (right_var + eps).sqrt()
    gamma_hat = _safe_div(left_std, right_std, eps)
    r_hat = _safe_div((abs_sum / count).square(), square_sum / count, eps)
    r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1).square()
    nu = solve_shape(r_hat_norm, method)
    inv = 1.0 / nu
    eta = (right_std - left_std) * torch.exp(torch.lgamma(2 * inv) - 0.5 * (torch.lgamma(inv) + torch.lgamma(3 * inv)))
    return torch.stack([r_hat_norm if method == 'ratio' else nu, eta, left_var, right_var], dim=-1)
