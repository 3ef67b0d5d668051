"""MATLAB's ``imresize(x, 0.5)`` (bicubic, antialiased, symmetric borders) as two matrix products."""
import math
from functools import lru_cache

import torch
from basicsr.utils.matlab_functions import calculate_weights_indices


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


def half_resize(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(x, 0.5)`` (bicubic with antialiasing) of B x C x H x W -> ceil(H/2) x ceil(W/2)."""
    rows = _half_resize_matrix(x.shape[-2]).to(dtype=x.dtype, device=x.device)
    cols = _half_resize_matrix(x.shape[-1]).to(dtype=x.dtype, device=x.device)
    return rows @ x @ cols.T
