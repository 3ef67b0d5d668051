"""Products of an MSCN map with its circularly shifted neighbours, and the AGGD fits of those products."""
import torch
import torch.nn.functional as F

from .device import backward_autocast_off, full_precision
from .fits import aggd_from_moments, fill_sign_rows, moment_rows, signed_moments, signed_moments_grad

# BRISQUE's horizontal, vertical and two diagonal neighbours, as (row, column) shifts.
NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def circular_pad(m: torch.Tensor) -> torch.Tensor:
    """B x C x H x W -> B x C x (H + 2) x (W + 2), wrapped around by one sample on every side."""
    return F.pad(m, (1, 1, 1, 1), mode='circular')


def shifted(padded: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """The view of a map padded by :func:`circular_pad` that is MATLAB's ``circshift(m, (di, dj))`` of the map:
    ``out[i, j] = m[i - di, j - dj]`` (indices mod H, W), for shifts of at most one sample."""
    h, w = padded.shape[-2] - 2, padded.shape[-1] - 2
    return padded[..., 1 - di:1 - di + h, 1 - dj:1 - dj + w]


def fold_circular_pad(padded: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`circular_pad`: each padded sample's value added to the one it copies. Modifies ``padded``
    and returns a B x C x H x W view of it."""
    h, w = padded.shape[-2] - 2, padded.shape[-1] - 2
    rows = padded[..., 1:h + 1, :]
    rows[..., h - 1, :] += padded[..., 0, :]
    rows[..., 0, :] += padded[..., h + 1, :]
    inner = rows[..., 1:w + 1]
    inner[..., w - 1] += rows[..., 0]
    inner[..., 0] += rows[..., w + 1]
    return inner


class _NeighbourMoments(torch.autograd.Function):
    """:func:`fits.signed_moments` of the four neighbour products of B x C x H x W: B x C x 4 x 6.

    The shifted maps are views of one circularly padded copy, and each product is written into one reused buffer
    and never kept: backward recomputes it, which saves memory and allocations (on a CPU, fresh large tensors cost
    more than the arithmetic); these sums dominate the cost of the BRISQUE loss.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        m = m.contiguous()
        ctx.save_for_backward(m)
        padded = circular_pad(m)
        rows = moment_rows(m.flatten(-2))
        product = rows[..., 0, :].unflatten(-1, m.shape[-2:])
        moments = []
        for di, dj in NEIGHBOUR_SHIFTS:
            torch.mul(m, shifted(padded, di, dj), out=product)
            moments.append(signed_moments(rows))
        return torch.stack(moments, dim=2)

    @staticmethod
    @backward_autocast_off
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        m, = ctx.saved_tensors
        padded = circular_pad(m)
        rows = moment_rows(m.flatten(-2))
        product = rows[..., 0, :].unflatten(-1, m.shape[-2:])
        grad_padded = torch.zeros_like(padded)
        centre = shifted(grad_padded, 0, 0)
        for k, (di, dj) in enumerate(NEIGHBOUR_SHIFTS):
            neighbour = shifted(padded, di, dj)
            torch.mul(m, neighbour, out=product)
            fill_sign_rows(rows)
            grad_p = signed_moments_grad(rows, grad[..., k, :]).view_as(m)
            # d(m_i m_{i-d})/dm: the term where m is the first factor, and the one where it is the shifted one
            centre.addcmul_(grad_p, neighbour)
            shifted(grad_padded, di, dj).addcmul_(grad_p, m)
        return fold_circular_pad(grad_padded)


@full_precision
def fit_neighbour_aggd(m: torch.Tensor, method: str, eps: float = 0.0) -> torch.Tensor:
    """AGGD fit (:func:`fits.aggd_from_moments`) of each of the four neighbour products of ``m`` (B x C x H x W).

    Returns:
        B x C x 4 x 4 in the compute dtype of ``m``: per shift (0,1), (1,0), (1,1), (-1,1): shape (or ratio),
        mean, left and right variance.
    """
    return aggd_from_moments(_NeighbourMoments.apply(m), m.shape[-2] * m.shape[-1], method, eps)
