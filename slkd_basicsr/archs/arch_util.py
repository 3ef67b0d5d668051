"""Building blocks shared by the archs in this package."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = 'reflect') -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad the bottom and right of ``x`` (B x C x H x W) so that H and W are multiples of ``multiple``.

    Reflection needs the pad to be smaller than the side, so tiny inputs fall back to replication.

    Returns:
        The padded tensor and the original (H, W), for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        if mode == 'reflect' and (pad_h >= h or pad_w >= w):
            mode = 'replicate'
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Crop B x C x H' x W' back to the (H, W) returned by :func:`pad_to_multiple`."""
    return x[..., :size[0], :size[1]]


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of each pixel of a B x C x H x W map.

    ``with_bias=True`` is the usual layer norm ``(x - mean) / sqrt(var + eps) * weight + bias`` (Restormer's
    ``WithBias_LayerNorm``, NAFNet's ``LayerNorm2d``). ``with_bias=False`` is Restormer's ``BiasFree_LayerNorm``:
    ``x / sqrt(var + eps) * weight``, which rescales without re-centring. ``var`` is the biased variance over C.
    The parameters are ``weight`` (and ``bias``), each of shape (C,), as in the original checkpoints.
    """

    def __init__(self, channels: int, with_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=1, keepdim=True, unbiased=False)
        if self.bias is None:
            return x / torch.sqrt(var + self.eps) * self.weight[:, None, None]
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]
