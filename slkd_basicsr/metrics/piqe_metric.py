"""PIQE extractor (Venkatanath et al. 2015, as MATLAB's ``piqe``): block maps, the image-mode score, the metric.

:func:`piqe_block_maps` is the one implementation; image mode uses hard thresholds on 16x16 blocks,
``PIQEFeatureLoss`` uses smooth thresholds (a temperature) on small blocks.
"""
import math
from typing import Optional, Tuple

import numpy as np
import torch

from basicsr.utils.registry import METRIC_REGISTRY
from .image_util import image_to_gray, metric_image
from .nss_util import mscn, to_blocks

IMAGE_BLOCK_SIZE = 16
IMAGE_SEGMENT_SIZE = 6
ACTIVITY_THRESHOLD = 0.1
IMPAIRMENT_THRESHOLD = 0.1
MAP_NAMES = ('activity', 'impairment', 'noise', 'distortion')


def _unbiased_var(x: torch.Tensor, dims: Tuple[int, ...]) -> torch.Tensor:
    """Sample variance over ``dims``, two-pass; ``Tensor.var`` is very slow over small strided block dims on CPU."""
    centred = x - x.mean(dim=dims, keepdim=True)
    return centred.square().sum(dim=dims) / (math.prod(x.shape[d] for d in dims) - 1)


def _unbiased_std(x: torch.Tensor, dims: Tuple[int, ...], eps: float) -> torch.Tensor:
    return (_unbiased_var(x, dims) + eps).sqrt()


def _threshold(value: torch.Tensor, threshold: float, temperature: Optional[float]) -> torch.Tensor:
    """1 where value > threshold: a step (temperature None) or a sigmoid of width ``temperature``."""
    if temperature is None:
        return (value > threshold).to(value.dtype)
    return torch.sigmoid((value - threshold) / temperature)


def surround_columns(n: int, matlab: bool) -> torch.Tensor:
    """Column indices of a block's surround for the centre-vs-surround noise test (centre: n/2 - 1 and n/2).

    MATLAB's piqe deletes centre column n/2 (1-based) and then column n/2 + 1 of the *shrunk* block, which
    keeps the second centre column in the surround and drops the column after it; ``matlab=True`` reproduces
    that, ``matlab=False`` takes the plain complement of the centre.
    """
    dropped = (n // 2 - 1, n // 2 + 1) if matlab else (n // 2 - 1, n // 2)
    return torch.tensor([j for j in range(n) if j not in dropped])


def piqe_block_maps(m: torch.Tensor,
                    block_size: int = IMAGE_BLOCK_SIZE,
                    segment_size: int = IMAGE_SEGMENT_SIZE,
                    temperature: Optional[float] = None,
                    matlab_surround: bool = True,
                    eps: float = 0.0) -> torch.Tensor:
    """Per-block PIQE maps of an MSCN map.

    For each n x n block with unbiased MSCN variance v: activity [v > 0.1]; impairment [some run of
    ``segment_size`` samples along one of the 4 block borders has std < 0.1]; noise [sqrt(v) > 2 beta] with
    beta = |sqrt(v) - r| / max(sqrt(v), r) and r = std(centre 2 columns) / std(surround) (0 when undefined);
    distortion impairment * (1 - v) + noise * v. Impairment, noise and distortion count on active blocks only.

    Args:
        m: B x C x H x W MSCN map, H and W multiples of ``block_size``.
        temperature: None = hard thresholds (reference); a float = sigmoids of that width (differentiable).
        matlab_surround: surround columns as MATLAB (see :func:`surround_columns`).
        eps: added under square roots and to denominators for finite gradients (0 = reference).

    Returns:
        B x C x 4 x H/n x W/n: activity, impairment, noise, distortion (in [0, 1] except distortion).
    """
    blocks = to_blocks(m, block_size)
    variance = _unbiased_var(blocks, (-2, -1))
    activity = _threshold(variance, ACTIVITY_THRESHOLD, temperature)

    borders = torch.stack([blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]], dim=-2)
    segment_std = _unbiased_std(borders.unfold(-1, segment_size, 1), (-1, ), eps)
    impairment = activity * _threshold(-segment_std.amin(dim=(-2, -1)), -IMPAIRMENT_THRESHOLD, temperature)

    sigma = (variance + eps).sqrt()
    centre = blocks[..., block_size // 2 - 1:block_size // 2 + 1]
    surround = blocks[..., surround_columns(block_size, matlab_surround).to(m.device)]
    ratio = _unbiased_std(centre, (-2, -1), eps) / (_unbiased_std(surround, (-2, -1), eps) + eps)
    ratio = torch.where(ratio.isnan(), torch.zeros_like(ratio), ratio)
    beta = (sigma - ratio).abs() / (torch.maximum(sigma, ratio) + eps)
    noise = activity * _threshold(sigma - 2 * beta, 0.0, temperature)

    distortion = impairment * (1 - variance) + noise * variance
    return torch.stack([activity, impairment, noise, distortion], dim=2)


def piqe(img: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """PIQE score and block masks of an image, as MATLAB's ``piqe``.

    The image is made gray (rgb2gray), padded symmetrically at the bottom/right to a multiple of 16, rescaled
    so that its maximum is 255 and rounded; MSCN uses a replicate border and c = 1.

    Args:
        img: H x W or H x W x 3 (RGB), uint8 or float in [0, 255], at least 8x8.

    Returns:
        score in [0, 100] (0 best; 100 for a uniform image), and the H x W boolean masks of active blocks,
        blocks with noticeable artifacts and noisy blocks.
    """
    gray = image_to_gray(img, 'piqe')[0, 0].numpy()
    height, width = gray.shape
    gray = np.pad(gray, ((0, -height % IMAGE_BLOCK_SIZE), (0, -width % IMAGE_BLOCK_SIZE)), mode='symmetric')
    peak = gray.max()
    if peak > 0:  # an all-black image stays black instead of dividing by zero
        gray = np.round(255 * (gray / peak))
    m = mscn(torch.from_numpy(gray)[None, None], 1.0, 'replicate')
    activity, impairment, noise, distortion = piqe_block_maps(m)[0, 0]
    score = 100 * (float(distortion.sum()) + 1) / (float(activity.sum()) + 1)
    masks = [
        block.bool().repeat_interleave(IMAGE_BLOCK_SIZE, 0).repeat_interleave(IMAGE_BLOCK_SIZE, 1)
        [:height, :width].numpy() for block in (activity, impairment, noise)
    ]
    return score, masks[0], masks[1], masks[2]


@METRIC_REGISTRY.register()
def calculate_piqe(img: np.ndarray,
                   crop_border: int,
                   input_order: str = 'HWC',
                   convert_to: str = 'gray',
                   **kwargs) -> float:
    """PIQE score (0 best .. 100 worst), used like BasicSR's ``calculate_niqe`` under ``val.metrics``.

    Args:
        img: BGR image in [0, 255] (uint8 or float) from ``tensor2img``, layout ``input_order``.
        crop_border: pixels removed on each side.
        input_order: 'HW', 'HWC' or 'CHW'.
        convert_to: 'gray' (MATLAB rgb2gray, as the reference) or 'y'.
    """
    return piqe(metric_image(img, crop_border, input_order, convert_to))[0]
