"""Products of an MSCN map with its circularly shifted neighbours, and the AGGD fits of those products."""
from functools import lru_cache
from typing import Tuple

import torch

from .device import backward_autocast_off, device_constant, full_precision
from .fits import aggd_from_moments, fill_sign_rows, moment_rows, signed_moments, signed_moments_grad

# BRISQUE's horizontal, vertical and two diagonal neighbours, as (row, column) shifts.
NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@lru_cache(maxsize=None)
def _shift_sources(h: int, w: int) -> torch.Tensor:
    """4 * H * W int64: for each shift of :data:`NEIGHBOUR_SHIFTS` in turn, the flat index of ``m[i - di, j - dj]``
    (mod H, W) for every flat position ``i * W + j`` of an H x W map."""
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    return torch.cat([(((i - di) % h) * w + (j - dj) % w).flatten() for di, dj in NEIGHBOUR_SHIFTS])


def neighbour_rows(m: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The four neighbour products of ``m`` in a :func:`fits.moment_rows` buffer, and the shifted maps.

    Shifts are MATLAB's circshift: the product for shift (di, dj) is ``m[i, j] m[i - di, j - dj]`` (indices mod H,
    W). The four shifted maps are one gather, whatever the map's size: on the small feature maps the losses compare,
    the number of operator launches, not the arithmetic, is what costs.

    Args:
        m: B x C x H x W.

    Returns:
        rows: B x C x 4 x 4 x H*W, the products in row 0 of each shift's 4 x H*W block (rows 1-3 as
            :func:`fits.moment_rows` leaves them); shifted: B x C x 4 x H*W, the shifted maps.
    """
    flat = m.flatten(-2)
    sources = device_constant(_shift_sources, *m.shape[-2:], like=m, dtype=torch.int64)
    # on a 2-D view: index_select along the last of several dimensions is several times slower on CPUs
    shifted = flat.reshape(-1, flat.shape[-1]).index_select(1, sources).view(*flat.shape[:-1], -1, flat.shape[-1])
    rows = moment_rows(shifted)
    torch.mul(shifted, flat.unsqueeze(-2), out=rows[..., 0, :])
    return rows, shifted


class _NeighbourMoments(torch.autograd.Function):
    """:func:`fits.signed_moments` of the four neighbour products of B x C x H x W: B x C x 4 x 6.

    Only ``m`` is kept for backward, which rebuilds the products (cheaper than holding 20 maps of its size between
    the passes); these sums dominate the cost of the BRISQUE loss.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        m = m.contiguous()
        ctx.save_for_backward(m)
        return signed_moments(neighbour_rows(m)[0])

    @staticmethod
    @backward_autocast_off
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        m, = ctx.saved_tensors
        rows, shifted = neighbour_rows(m)
        fill_sign_rows(rows)
        grad_p = signed_moments_grad(rows, grad)
        flat = m.flatten(-2)
        # d(m_i m_{i-d})/dm: the term where m is the first factor, and the one where it is the shifted one (added
        # back at the source of each shifted sample)
        grad_m = (grad_p * shifted).sum(dim=-2)
        sources = device_constant(_shift_sources, *m.shape[-2:], like=m, dtype=torch.int64)
        grad_m.index_add_(-1, sources, (grad_p * flat.unsqueeze(-2)).flatten(-2))
        return grad_m.view_as(m)


@full_precision
def fit_neighbour_aggd(m: torch.Tensor, method: str, eps: float = 0.0) -> torch.Tensor:
    """AGGD fit (:func:`fits.aggd_from_moments`) of each of the four neighbour products of ``m`` (B x C x H x W).

    Returns:
        B x C x 4 x 4 in the compute dtype of ``m``: per shift (0,1), (1,0), (1,1), (-1,1): shape (or ratio),
        mean, left and right variance.
    """
    return aggd_from_moments(_NeighbourMoments.apply(m), m.shape[-2] * m.shape[-1], method, eps)
