"""Products of an MSCN map with its circularly shifted neighbours, and the AGGD fits of those products."""
from typing import Tuple

import torch

from .device import backward_autocast_off, full_precision
from .fits import aggd_from_moments, fill_sign_rows, moment_rows, signed_moments, signed_moments_grad

# BRISQUE's horizontal, vertical and two diagonal neighbours, as (row, column) shifts.
NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def _wrap_pieces(length: int, shift: int) -> Tuple[Tuple[slice, slice], ...]:
    """(target, source) index ranges along one axis with ``out[i] = x[(i - shift) mod length]``."""
    shift %= length
    pieces = ((slice(shift, length), slice(0, length - shift)), (slice(0, shift), slice(length - shift, length)))
    return tuple(piece for piece in pieces if piece[0].start != piece[0].stop)


def _shift_pieces(h: int, w: int, di: int, dj: int):
    """Pairs of (target, source) 2-D index tuples that together make a circular shift by (di, dj) of an h x w map.

    Working on these views instead of a padded copy lets shifted products be written straight into a buffer.
    """
    for rows_to, rows_from in _wrap_pieces(h, di):
        for cols_to, cols_from in _wrap_pieces(w, dj):
            yield (..., rows_to, cols_to), (..., rows_from, cols_from)


def shifted_product(m: torch.Tensor, di: int, dj: int, out: torch.Tensor) -> torch.Tensor:
    """Write ``m * circshift(m, (di, dj))`` (MATLAB's circshift: ``out[i, j] = m[i, j] m[i - di, j - dj]``) to out.

    Args:
        m: ... x H x W.
        out: a tensor of the shape of ``m`` (may be a view into a larger buffer).
    """
    for target, source in _shift_pieces(*m.shape[-2:], di, dj):
        torch.mul(m[target], m[source], out=out[target])
    return out


class _NeighbourMoments(torch.autograd.Function):
    """:func:`fits.signed_moments` of the four neighbour products of B x C x H x W: B x C x 4 x 6.

    Each product is written into one reused buffer and never kept: backward recomputes it, which saves memory
    and allocations (on a CPU, fresh large tensors cost more than the arithmetic); these sums dominate the
    cost of the BRISQUE loss.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        m = m.contiguous()
        ctx.save_for_backward(m)
        rows = moment_rows(m.flatten(-2))
        product = rows[..., 0, :].unflatten(-1, m.shape[-2:])
        moments = []
        for di, dj in NEIGHBOUR_SHIFTS:
            shifted_product(m, di, dj, product)
            moments.append(signed_moments(rows))
        return torch.stack(moments, dim=2)

    @staticmethod
    @backward_autocast_off
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        m, = ctx.saved_tensors
        rows = moment_rows(m.flatten(-2))
        product = rows[..., 0, :].unflatten(-1, m.shape[-2:])
        grad_m = torch.zeros_like(m)
        for k, (di, dj) in enumerate(NEIGHBOUR_SHIFTS):
            shifted_product(m, di, dj, product)
            fill_sign_rows(rows)
            grad_p = signed_moments_grad(rows, grad[..., k, :]).view_as(m)
            # d(m_i m_{i-d})/dm: the term where m is the first factor, and the one where it is the shifted one
            for target, source in _shift_pieces(*m.shape[-2:], di, dj):
                grad_m[target].addcmul_(grad_p[target], m[source])
                grad_m[source].addcmul_(grad_p[target], m[target])
        return grad_m


@full_precision
def fit_neighbour_aggd(m: torch.Tensor, method: str, eps: float = 0.0) -> torch.Tensor:
    """AGGD fit (:func:`fits.aggd_from_moments`) of each of the four neighbour products of ``m`` (B x C x H x W).

    Returns:
        B x C x 4 x 4 in the compute dtype of ``m``: per shift (0,1), (1,0), (1,1), (-1,1): shape (or ratio),
        mean, left and right variance.
    """
    return aggd_from_moments(_NeighbourMoments.apply(m), m.shape[-2] * m.shape[-1], method, eps)
