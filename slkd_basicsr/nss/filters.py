"""The normalised Gaussian window and MSCN (mean-subtracted contrast-normalised) coefficients."""
from functools import lru_cache
from typing import Tuple

import torch

from .device import backward_autocast_off, device_constant, full_precision

PADDING_MODES = ('zero', 'replicate', 'reflect')


@lru_cache(maxsize=None)
def _gaussian_matrix(length: int, padding: str, kernel_size: int, sigma: float) -> torch.Tensor:
    """L x L float64 matrix applying a normalised 1-D Gaussian along one axis, border handling folded in.

    Filtering as ``A_h @ x @ A_w^T`` is one matrix product per axis, several times faster on CPU than a
    single-channel convolution over B*C maps, and its backward is again two products.
    """
    taps = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()  # the outer product is MATLAB's normalised fspecial('gaussian')
    rows = torch.arange(length)[:, None].expand(length, kernel_size)
    cols = rows + taps.long()[None, :]
    weights = kernel[None, :].expand(length, kernel_size).clone()
    if padding == 'zero':
        weights[(cols < 0) | (cols >= length)] = 0
        cols = cols.clamp(0, length - 1)
    elif padding == 'replicate':
        cols = cols.clamp(0, length - 1)
    else:  # reflect about the edge sample, as torch's 'reflect' (folded repeatedly for tiny maps)
        period = max(2 * length - 2, 1)
        cols = cols.remainder(period)
        cols = torch.where(cols >= length, period - cols, cols)
    matrix = torch.zeros(length, length, dtype=torch.float64)
    matrix.index_put_((rows.reshape(-1), cols.reshape(-1)), weights.reshape(-1), accumulate=True)
    return matrix


def _gaussian_matrices(shape: torch.Size, padding: str, kernel_size: int, sigma: float,
                       like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row and column matrices (``A_h``, ``A_w``) that filter maps of ``shape`` (... x H x W), as ``like``."""
    if padding not in PADDING_MODES:
        raise ValueError(f'padding must be one of {PADDING_MODES}, got {padding!r}')
    return tuple(
        device_constant(_gaussian_matrix, length, padding, kernel_size, sigma, like=like) for length in shape[-2:])


class _MSCN(torch.autograd.Function):
    """MSCN coefficients with a hand-written backward.

    Autograd would keep and allocate a dozen full-size intermediates; here the two filtered moments share one
    buffer, the forward works in place, and the backward filters both gradients with one pair of products
    (the adjoint of ``A x B^T`` is ``A^T g B``). Large fresh tensors are what these memory-bound maps cost most.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, c: float, eps: float) -> torch.Tensor:
        moments = x.new_empty(2, *x.shape)
        moments[0] = x
        torch.mul(x, x, out=moments[1])
        filtered = rows @ moments @ cols.T
        mu, local_var = filtered[0], filtered[1]
        local_var.addcmul_(mu, mu, value=-1)
        denom = local_var.abs().add_(eps).sqrt_().add_(c)
        m = torch.sub(x, mu).div_(denom)
        ctx.save_for_backward(x, m, mu, local_var, denom, rows, cols)
        ctx.c = c
        return m

    @staticmethod
    @backward_autocast_off
    def backward(ctx, grad_m: torch.Tensor):
        x, m, mu, local_var, denom, rows, cols = ctx.saved_tensors
        direct = grad_m / denom  # through x - mu
        grads = x.new_empty(2, *x.shape)
        g_mu, g_var = grads[0], grads[1]
        # m = (x - mu) / (sqrt(|var| + eps) + c): d/dvar = -m / denom * sign(var) / (2 sqrt(|var| + eps))
        torch.mul(direct, m, out=g_var).mul_(local_var.sign()).div_(denom - ctx.c).mul_(-0.5)
        # var = G(x^2) - mu^2 and mu = G(x)
        torch.mul(mu, g_var, out=g_mu).mul_(-2).sub_(direct)
        filtered = rows.T @ grads @ cols
        return direct.add_(filtered[0]).addcmul_(x, filtered[1], value=2), None, None, None, None


@full_precision
def mscn(x: torch.Tensor,
         c: float = 1.0,
         padding: str = 'zero',
         kernel_size: int = 7,
         sigma: float = 7 / 6,
         eps: float = 0.0) -> torch.Tensor:
    """Mean-subtracted contrast-normalised coefficients ``(x - mu) / (sqrt(|E[x^2] - mu^2| + eps) + c)``.

    Args:
        x: B x C x H x W, any range (images: [0, 255]).
        c: stabilising constant.
        padding: border of the normalised Gaussian window (``kernel_size``, ``sigma``): 'zero' (MATLAB
            ``filter2(..., 'same')``), 'replicate' (``imgaussfilt`` default) or 'reflect'.
        eps: added under the square root so that its gradient stays finite on flat regions (0 = reference).

    Returns:
        B x C x H x W in the compute dtype of ``x`` (:func:`device.compute_dtype`).
    """
    x = x.contiguous()
    rows, cols = _gaussian_matrices(x.shape, padding, kernel_size, sigma, x)
    return _MSCN.apply(x, rows, cols, float(c), float(eps))
