"""Building blocks shared by the archs in this package."""
from typing import Tuple

import torch
import torch.nn.functional as F


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
