"""BRISQUE statistics (Mittal, Moorthy, Bovik 2012) of every channel of a map, in image or feature mode."""
from typing import Dict, List, Sequence, Tuple

import torch

from .device import full_precision
from .filters import mscn
from .fits import fit_ggd
from .neighbours import fit_neighbour_aggd
from .resize import half_resize


def _scale_statistics(x: torch.Tensor, c: float, padding: str, shape: str, eps: float) -> torch.Tensor:
    """The 18 statistics of one scale: B x C x H x W -> B x C x 18."""
    m = mscn(x, c, padding, eps=eps)
    ggd_shape, variance = fit_ggd(m.flatten(-2), shape, eps)
    pairs = fit_neighbour_aggd(m, shape, eps)
    return torch.cat([ggd_shape[..., None], variance[..., None], pairs.flatten(-2)], dim=-1)


def brisque_statistics_of_maps(xs: Sequence[torch.Tensor],
                               num_scales: Sequence[int],
                               c: float = 1.0,
                               padding: str = 'zero',
                               shape: str = 'grid',
                               eps: float = 0.0) -> List[torch.Tensor]:
    """:func:`brisque_statistics` of each map of ``xs`` with its own number of scales, in one pass.

    Every scale of every map whose C x H x W is the same (say the half-resolution scale of a 48 x 48 level and the
    full scale of a 24 x 24 one) is computed in one call on their concatenation: the statistics are per sample and
    channel, so the values are those of separate calls, and the small maps of the feature losses cost operator
    launches, not arithmetic.

    Args:
        xs: B_i x C_i x H_i x W_i maps, one dtype.
        num_scales: number of scales of each map.

    Returns:
        B_i x C_i x (18 * num_scales[i]) per map, in the compute dtype of the maps.
    """
    scales = []
    for x, count in zip(xs, num_scales):
        maps = [x]
        for _ in range(1, count):
            maps.append(half_resize(maps[-1]))
        scales.append(maps)
    groups: Dict[torch.Size, List[Tuple[int, int]]] = {}
    for i, maps in enumerate(scales):
        for s, m in enumerate(maps):
            groups.setdefault(m.shape[1:], []).append((i, s))
    stats = [[None] * len(maps) for maps in scales]
    for members in groups.values():
        joint = _scale_statistics(torch.cat([scales[i][s] for i, s in members]), c, padding, shape, eps)
        for (i, s), part in zip(members, joint.split([scales[i][s].shape[0] for i, s in members])):
            stats[i][s] = part
    return [torch.cat(parts, dim=-1) for parts in stats]


@full_precision
def brisque_statistics(x: torch.Tensor,
                       c: float = 1.0,
                       padding: str = 'zero',
                       shape: str = 'grid',
                       eps: float = 0.0,
                       num_scales: int = 2) -> torch.Tensor:
    """BRISQUE statistics of every channel of ``x``.

    Per scale: [alpha, sigma^2] of the GGD fit of the MSCN map, then for the neighbour products with shifts
    (0,1), (1,0), (1,1), (-1,1): [nu, eta, sigma_l^2, sigma_r^2] of the AGGD fit. Each further scale is the
    previous one resized by MATLAB's bicubic 0.5x with antialiasing. The defaults are the reference (image
    mode: the metric); the feature loss uses a differentiable ``shape``, its own ``c``, ``padding`` and ``eps``.

    Args:
        x: B x C x H x W (images: luminance in [0, 255]).
        c, padding, eps: MSCN options, see :func:`filters.mscn`.
        shape: 'grid' (reference), 'interp' (differentiable shapes) or 'ratio' (moment ratios in the shape
            slots), see :data:`fits.SHAPE_METHODS`.
        num_scales: number of scales.

    Returns:
        B x C x (18 * num_scales), in the compute dtype of ``x``.
    """
    return brisque_statistics_of_maps([x], [num_scales], c, padding, shape, eps)[0]
