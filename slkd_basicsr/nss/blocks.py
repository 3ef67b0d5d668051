"""Non-overlapping n x n blocks of a map and the block sums PIQE's statistics are built from."""
from functools import lru_cache
from typing import Tuple

import torch

from .device import backward_autocast_off, device_constant, full_precision


def to_blocks(x: torch.Tensor, n: int) -> torch.Tensor:
    """Cut B x C x H x W (H, W multiples of n) into non-overlapping blocks: B x C x H/n x W/n x n x n."""
    b, c, h, w = x.shape
    if h % n or w % n:
        raise ValueError(f'map size {h}x{w} is not a multiple of the block size {n}')
    return x.reshape(b, c, h // n, n, w // n, n).transpose(-3, -2)


@lru_cache(maxsize=None)
def _window_matrix(n: int, segment: int) -> torch.Tensor:
    """n x (n - segment + 1) float64 0/1 matrix whose column k sums samples k .. k + segment - 1."""
    index = torch.arange(n)[:, None] - torch.arange(n - segment + 1)[None, :]
    return ((index >= 0) & (index < segment)).to(torch.float64)


def _block_edges(blocks: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Views of the top, right, bottom and left border samples of ... x n x n blocks, each ... x n."""
    return blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]


class _BlockSums(torch.autograd.Function):
    """Column sums and border run sums of n x n blocks, with a backward that writes each gradient once.

    Autograd of the slicing, stacking and windowing would build a full-size zero tensor per border view.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int, segment: int) -> Tuple[torch.Tensor, torch.Tensor]:
        blocks = to_blocks(x, n)
        window = device_constant(_window_matrix, n, segment, like=x)
        ctx.save_for_backward(window)
        ctx.shape, ctx.n = x.shape, n
        return blocks.sum(-2), torch.stack(_block_edges(blocks), dim=-2) @ window

    @staticmethod
    @backward_autocast_off
    def backward(ctx, grad_columns: torch.Tensor, grad_runs: torch.Tensor):
        window, = ctx.saved_tensors
        grad_x = grad_columns.new_empty(ctx.shape)
        grad_blocks = to_blocks(grad_x, ctx.n)
        grad_blocks.copy_(grad_columns[..., None, :].expand_as(grad_blocks))
        grad_edges = grad_runs @ window.T
        for k, edge in enumerate(_block_edges(grad_blocks)):
            edge.add_(grad_edges[..., k, :])
        return grad_x, None, None


@full_precision
def block_sums(x: torch.Tensor, n: int, segment: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sums over the n x n blocks of ``x`` (B x C x H x W, H and W multiples of n) that PIQE's statistics need.

    Returns:
        column sums B x C x H/n x W/n x n (one per block column), and sums of every run of ``segment``
        consecutive samples along the top, right, bottom and left borders: B x C x H/n x W/n x 4 x (n-segment+1);
        both in the compute dtype of ``x``.
    """
    return _BlockSums.apply(x, n, segment)
