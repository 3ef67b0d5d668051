"""What the teachers see of a training batch, and the matching part of what the student computes.

Two options cut the teachers' cost (and the distillation terms'): ``distill.teacher_batch`` (the first samples of
the batch) and ``distill.teacher_crop`` (a centred square of the patch; the data loader's random crops already
place it anywhere in the images). The student still sees the whole batch; its output and tapped features are cut
to the same samples and region before they are compared with the teachers'.
"""
import math
from typing import NamedTuple, Optional, Tuple, Union

import torch

# the crop starts on a multiple of this many pixels, so that it starts on a whole pixel of every tap of a network
# that downsamples up to 16 times (Restormer, DRSformer, Uformer: 8; NAFNet with four levels: 16)
CROP_ALIGN = 16


def teacher_samples(share: Optional[Union[int, float]], batch: int) -> int:
    """How many of ``batch`` samples the teachers see: all for None, ``share`` samples for an integer (at most the
    batch), that share of the batch for a fraction in (0, 1) (at least one)."""
    if share is None:
        return batch
    if isinstance(share, float) and share < 1:
        return max(1, round(share * batch))
    return min(int(share), batch)


class TeacherView(NamedTuple):
    """The first ``samples`` samples and the ``box`` (top, left, height, width in input pixels; None: all of it) of
    a batch of ``input_size`` (H, W) inputs."""
    samples: int
    box: Optional[Tuple[int, int, int, int]]
    input_size: Tuple[int, int]

    @classmethod
    def of_batch(cls, x: torch.Tensor, share: Optional[Union[int, float]],
                 crop: Optional[Union[int, float]]) -> 'TeacherView':
        """The view of ``x`` (B x C x H x W) for ``distill.teacher_batch`` = ``share`` and ``teacher_crop`` = ``crop``:
        None (the whole patch), a side in pixels, or a share of each side in (0, 1), rounded up to a multiple of
        :data:`CROP_ALIGN` (so that a default share never leaves a deep tap too small or makes a teacher pad). No
        crop when it would not be smaller than the patch."""
        h, w = x.shape[-2:]
        if crop is None:
            return cls(teacher_samples(share, x.shape[0]), None, (h, w))
        if crop < 1:
            height, width = (min(size, math.ceil(crop * size / CROP_ALIGN) * CROP_ALIGN) for size in (h, w))
        else:
            height, width = min(crop, h), min(crop, w)
        box = None
        if (height, width) != (h, w):
            box = ((h - height) // 2 // CROP_ALIGN * CROP_ALIGN, (w - width) // 2 // CROP_ALIGN * CROP_ALIGN, height,
                   width)
        return cls(teacher_samples(share, x.shape[0]), box, (h, w))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The view of ``x``: an input (B x C x H x W) or a map computed from one (B x C x h x w, any h, w; its box
        is scaled to the map's size, rounded outward), as a k x C x h' x w' view."""
        if self.samples < x.shape[0]:
            x = x[:self.samples]
        if self.box is None:
            return x
        top, left, height, width = self.box
        (h, w), (fh, fw) = self.input_size, x.shape[-2:]
        rows = _scaled(top, height, h, fh)
        cols = _scaled(left, width, w, fw)
        return x[..., rows[0]:rows[1], cols[0]:cols[1]]


def _scaled(start: int, length: int, size: int, map_size: int) -> Tuple[int, int]:
    """The range [start, start + length) of an axis of ``size`` pixels on a map of ``map_size``, rounded outward
    (at least one map pixel)."""
    first = start * map_size // size
    last = -(-(start + length) * map_size // size)
    return first, min(map_size, max(last, first + 1))
