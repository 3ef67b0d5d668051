"""Test-only entry points into the NSS core.

The package fits AGGDs only to the four neighbour products of a map, fused so that no product is kept
(:func:`slkd_basicsr.nss.neighbours.fit_neighbour_aggd`). These helpers expose the same pieces on their own,
so the tests can check them against plain tensors: the AGGD fit of any samples (built from the package's
signed moments, their hand-written gradient and its fit) and the neighbour products themselves.
"""
import torch

from slkd_basicsr.nss.fits import aggd_from_moments, moment_rows, signed_moments, signed_moments_grad
from slkd_basicsr.nss.neighbours import NEIGHBOUR_SHIFTS, circular_pad, shifted


class SignedMoments(torch.autograd.Function):
    """:func:`fits.signed_moments` of ... x N samples (... x 6) with the package's hand-written backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rows = moment_rows(x)
        rows[..., 0, :] = x
        ctx.save_for_backward(rows)
        return signed_moments(rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        rows, = ctx.saved_tensors
        return signed_moments_grad(rows, grad)


def fit_aggd(x: torch.Tensor, method: str, eps: float = 0.0) -> torch.Tensor:
    """AGGD fit over the last dimension of ``x``: ``x.shape[:-1] + (4,)`` (see :func:`fits.aggd_from_moments`)."""
    return aggd_from_moments(SignedMoments.apply(x), x.shape[-1], method, eps)


def neighbour_products(m: torch.Tensor) -> torch.Tensor:
    """Products of ``m`` (B x C x H x W) with its circular shifts (0,1), (1,0), (1,1), (-1,1): B x C x 4 x H x W."""
    padded = circular_pad(m)
    return torch.stack([m * shifted(padded, di, dj) for di, dj in NEIGHBOUR_SHIFTS], dim=2)
