"""PIQE block maps (Venkatanath et al. 2015, as MATLAB's ``piqe``) of every channel of an MSCN map.

Image mode (the metric) uses hard thresholds on 16 x 16 blocks; feature mode (the loss) uses smooth thresholds
(a temperature) on small blocks.
"""
from typing import Optional, Tuple

import torch

from .blocks import block_sums
from .device import full_precision

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


@full_precision
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
        B x C x 4 x H/n x W/n in the compute dtype of ``m``: activity, impairment, noise, distortion (in [0, 1]
        except distortion).
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
    # two columns by integer index: a list index would be a host-to-device copy on every call
    first, second = non_surround_columns(n, matlab_surround)
    surround_std = _sample_std(total - (column_sum[..., first] + column_sum[..., second]),
                               total_sq - (column_sum_sq[..., first] + column_sum_sq[..., second]), n * (n - 2), eps)
    ratio = centre_std / (surround_std + eps)
    ratio = torch.where(ratio.isnan(), torch.zeros_like(ratio), ratio)
    sigma = (variance + eps).sqrt()
    beta = (sigma - ratio).abs() / (torch.maximum(sigma, ratio) + eps)
    noise = activity * _threshold(sigma - 2 * beta, 0.0, temperature)

    distortion = impairment * (1 - variance) + noise * variance
    return torch.stack([activity, impairment, noise, distortion], dim=2)
