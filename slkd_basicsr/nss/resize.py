"""MATLAB's ``imresize(x, 0.5)`` (bicubic, antialiased, symmetric borders) as two matrix products."""
import math
from functools import lru_cache

import torch
from basicsr.utils.matlab_functions import calculate_weights_indices

from .device import backward_autocast_off, device_constant, full_precision


@lru_cache(maxsize=None)
def _half_resize_matrix(length: int) -> torch.Tensor:
    """Dense ceil(L/2) x L float64 matrix of MATLAB ``imresize(.., 0.5)`` along one axis.

    The weights are BasicSR's port of MATLAB's (exact in its float32: at scale 0.5 they are dyadic fractions).
    BasicSR's ``imresize`` pads with one mirrored copy, too short for maps of 3 or fewer samples, works per
    channel without autograd and in float32; folding the indices into a matrix mirrors them as often as needed
    and makes the resize one differentiable product per axis in any dtype.
    """
    out_length = math.ceil(length * 0.5)
    weights, indices, pad_start, _ = calculate_weights_indices(length, out_length, 0.5, 'cubic', 4, True)
    source = (indices.long() - pad_start).remainder(2 * length)  # 0-based, symmetric about both edges
    source = torch.where(source >= length, 2 * length - 1 - source, source)
    rows = torch.arange(out_length)[:, None].expand_as(source)
    matrix = torch.zeros(out_length, length, dtype=torch.float64)
    matrix.index_put_((rows.reshape(-1), source.reshape(-1)), weights.double().reshape(-1), accumulate=True)
    return matrix


class _Separable(torch.autograd.Function):
    """``rows @ x @ cols^T`` for constant matrices, with its adjoint ``rows^T (g cols)`` as backward.

    Written out so that a backward run inside an autocast region keeps float32, as autograd's own matrix-product
    backward would not; the products are taken in autograd's order, so the gradients are the same to the bit.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows, cols)
        return rows @ x @ cols.T

    @staticmethod
    @backward_autocast_off
    def backward(ctx, grad: torch.Tensor):
        rows, cols = ctx.saved_tensors
        return rows.T @ (grad @ cols), None, None


@full_precision
def half_resize(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(x, 0.5)`` (bicubic with antialiasing) of B x C x H x W -> ceil(H/2) x ceil(W/2).

    Any range; the result is in the compute dtype of ``x``.
    """
    rows = device_constant(_half_resize_matrix, x.shape[-2], like=x)
    cols = device_constant(_half_resize_matrix, x.shape[-1], like=x)
    return _Separable.apply(x, rows, cols)
