"""Building blocks shared by the archs in this package."""
from typing import Any, Dict, Tuple

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
        if self.bias is None:
            var = torch.var(x, dim=1, keepdim=True, unbiased=False)
            return x / torch.sqrt(var + self.eps) * self.weight[:, None, None]
        # one fused kernel on a channels-last view: about twice as fast on CPU as the six element-wise passes
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class StudentPreset:
    """Mixin for a compact SLKD student: its parent arch built with ``preset`` overridden by any keyword given.

    ``class ResSL(StudentPreset, Restormer)`` adds no module of its own, so a student's state dict is the parent's
    with the same settings and checkpoints load into either class.
    """

    preset: Dict[str, Any] = {}

    def __init__(self, **overrides: Any):
        super().__init__(**{**self.preset, **overrides})
