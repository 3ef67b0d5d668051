"""PIQE extractor (Venkatanath et al. 2015, as MATLAB's ``piqe``): block maps, the image-mode score, the metric.

:func:`piqe_block_maps` is the one implementation; image mode uses hard thresholds on 16x16 blocks,
``PIQEFeatureLoss`` uses smooth thresholds (a temperature) on small blocks.
"""
from typing import Optional, Tuple

import numpy as np
import torch

from basicsr.utils.registry import METRIC_REGISTRY
from .image_util import image_to_gray, metric_image
from .nss_util import block_sums, mscn

IMAGE_BLOCK_SIZE = 16
IMAGE_SEGMENT_SIZE = 6
ACTIVITY_THRESHOLD = 0.1
IMPAIRMENT_THRESHOLD = 0.1


def _sample_std(total: torch.Tensor, total_sq: torch.Tensor, count: int, eps: float) -> torch.Tensor:
    """Unbiased standard deviation of ``count`` samples from their sum and sum of squares.

    Sums over views of the map and of its square share one squaring pass across all of PIQE's statistics and
    backpropagate cheaply; the MSCN values are O(1), so the one-pass formula loses nothing that matters.
    """
    return (_sample_var(total, total_sq, count) + eps).sqrt()


def _sample_var(total: torch.Tensor, total_sq: torch.Tensor, count: int) -> torch.Tensor:
    return ((total_sq - total * total / count) / (count - 1)).clamp_min(0)


def _threshold(value: torch.Tensor, threshold: float, temperature: Optional[float]) -> torch.Tensor:
    """1 where value > threshold: a step (temperature None) or a sigmoid of width ``temperature``."""
    if temperature is None:
        return (value > threshold).to(value.dtype)
    return torch.sigmoid((value - threshold) / temperature)


def non_surround_columns(n: int, matlab: bool) -> Tuple[int, int]:
    """Columns of an n x n block left out of the surround in the centre-vs-surround noise test.

    The centre is columns n/2 - 1 and n/2 (0-based). MATLAB's piqe deletes centre column n/2 (1-based) and then
    column n/2 + 1 of the *shrunk* block, which keeps the second centre column in the surround and drops the
    column after it; ``matlab=True`` reproduces that, ``matlab=False`` leaves out exactly the centre.
    """
    return (n // 2 - 1, n // 2 + 1) if matlab else (n // 2 - 1, n // 2)


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
        matlab_surround: surround columns as MATLAB (see :func:`non_surround_columns`).
        eps: added under square roots and to denominators for finite gradients (0 = reference).

    Returns:
        B x C x 4 x H/n x W/n: activity, impairment, noise, distortion (in [0, 1] except distortion).
    """
    n = block_size
    column_sum, border_runs = block_sums(m, n, segment_size)
    column_sum_sq, border_runs_sq = block_sums(m * m, n, segment_size)
    total, total_sq = column_sum.sum(-1), column_sum_sq.sum(-1)
    variance = _sample_var(total, total_sq, n * n)
    activity = _threshold(variance, ACTIVITY_THRESHOLD, temperature)

    segment_std = _sample_std(border_runs, border_runs_sq, segment_size, eps)
    impairment = activity * _threshold(-segment_std.amin(dim=(-2, -1)), -IMPAIRMENT_THRESHOLD, temperature)

    centre = slice(n // 2 - 1, n // 2 + 1)
    centre_std = _sample_std(column_sum[..., centre].sum(-1), column_sum_sq[..., centre].sum(-1), 2 * n, eps)
    left_out = list(non_surround_columns(n, matlab_surround))
    surround_std = _sample_std(total - column_sum[..., left_out].sum(-1),
                               total_sq - column_sum_sq[..., left_out].sum(-1), n * (n - 2), eps)
    ratio = centre_std / (surround_std + eps)
    ratio = torch.where(ratio.isnan(), torch.zeros_like(ratio), ratio)
    sigma = (variance + eps).sqrt()
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
