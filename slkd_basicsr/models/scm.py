"""Scale Conversion Module (SCM): maps tapped student features into the teacher's feature space.

Built by :class:`~slkd_basicsr.models.slkd_model.SLKDModel` from the probed tap channels, so it is not an
options-file network and not in BasicSR's ``ARCH_REGISTRY``.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class ScaleConversionModule(nn.Module):
    """One learnable 1x1 convolution per tap, from student to teacher channels, plus a resize.

    The resize (our choice) aligns taps whose spatial sizes differ, e.g. between architectures that
    downsample differently. A 1x1 convolution and a bilinear resize commute, so the convolution runs
    first, at the student's resolution.

    Args:
        student_channels: Channels of each student tap.
        teacher_channels: Channels of the matching teacher tap (same length).
        resize_mode: ``F.interpolate`` mode used when sizes differ. Default: 'bilinear'.
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int], resize_mode: str = 'bilinear'):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f'{len(student_channels)} student taps but {len(teacher_channels)} teacher taps: '
                             'give one (student, teacher) module pair per tap.')
        self.resize_mode = resize_mode
        self.convs = nn.ModuleList(nn.Conv2d(s, t, kernel_size=1) for s, t in zip(student_channels, teacher_channels))

    def forward(self, feats: Sequence[torch.Tensor], sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        """Convert student features.

        Args:
            feats: Student taps, tap i of shape B x student_channels[i] x H_i x W_i.
            sizes: Target (H, W) of each tap (the teacher's).

        Returns:
            One B x teacher_channels[i] x sizes[i] tensor per tap.
        """
        out = []
        for conv, feat, size in zip(self.convs, feats, sizes):
            feat = conv(feat)
            if tuple(feat.shape[-2:]) != tuple(size):
                align = False if self.resize_mode in ('bilinear', 'bicubic') else None
                feat = F.interpolate(feat, size=tuple(size), mode=self.resize_mode, align_corners=align)
            out.append(feat)
        return out
