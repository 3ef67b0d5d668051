"""BRISQUE statistics (Mittal, Moorthy, Bovik 2012) of every channel of a map, in image or feature mode."""
import torch

from .device import full_precision
from .filters import mscn
from .fits import fit_ggd
from .neighbours import fit_neighbour_aggd
from .resize import half_resize


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
    stats = []
    for scale in range(num_scales):
        if scale:
            x = half_resize(x)
        m = mscn(x, c, padding, eps=eps)
        ggd_shape, variance = fit_ggd(m.flatten(-2), shape, eps)
        pairs = fit_neighbour_aggd(m, shape, eps)
        stats.append(torch.cat([ggd_shape[..., None], variance[..., None], pairs.flatten(-2)], dim=-1))
    return torch.cat(stats, dim=-1)
