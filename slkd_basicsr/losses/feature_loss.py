"""Losses between lists of student (after the SCM) and teacher feature maps, compared level by level."""
from typing import Optional, Sequence, Tuple

import torch
from basicsr.losses.basic_loss import _reduction_modes
from basicsr.losses.loss_util import reduce_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from slkd_basicsr.nss.device import autocast_off

DEFAULT_SAMPLE_CHANNELS = 8


class FeatureListLoss(nn.Module):
    """Shared plumbing: option checks, per-level comparison of student and teacher lists, BasicSR reduction.

    Subclasses define :meth:`level_loss` (or :meth:`levels_loss`) as a mean over channels, which is what makes
    channel sampling unbiased.

    Args:
        loss_weight: multiplier of the loss.
        reduction: 'mean' | 'sum' | 'none' over levels and samples.
        sample_channels: channels per level compared at each call (see :meth:`sample`); 0 or None for all.
    """

    def __init__(self, loss_weight: float, reduction: str, sample_channels: Optional[int]):
        super().__init__()
        if sample_channels is not None and sample_channels < 0:
            raise ValueError(f'{type(self).__name__}: sample_channels must be a positive number of channels, '
                             f'or 0 / null for all; got {sample_channels}')
        if reduction not in _reduction_modes:
            raise ValueError(f'{type(self).__name__}: reduction must be one of {_reduction_modes}, got {reduction!r}')
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.sample_channels = sample_channels
        self.generator: Optional[torch.Generator] = None

    def sample(self, student: torch.Tensor, teacher: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The same ``sample_channels`` channels of both maps, drawn uniformly without replacement.

        The loss is a mean over channels, so a random subset estimates it (and its gradient) without bias, at a
        cost that no longer grows with the teacher's width. The draw is made on the features' device, so that no
        index is copied from the host at each step, with ``self.generator`` (``SLKDModel`` gives each loss its own
        on its device, seeded from ``manual_seed`` and the rank and kept in the training state), so it does not
        shift the global random stream that data and initialisation use; None (a loss used on its own) draws from
        torch's global generator of that device.
        """
        if not self.sample_channels or student.shape[1] <= self.sample_channels:
            return student, teacher
        index = self._channel_index(student.shape[1], student.device)
        return student.index_select(1, index), teacher.index_select(1, index)

    def _channel_index(self, channels: int, device: torch.device) -> torch.Tensor:
        """``sample_channels`` distinct indices in [0, channels), drawn on ``device``."""
        if self.generator is not None and self.generator.device != device:
            raise ValueError(f'{type(self).__name__}: the channel generator is on {self.generator.device} but the '
                             f'features are on {device}; give the loss a generator on the features\' device')
        return torch.randperm(channels, generator=self.generator, device=device)[:self.sample_channels]

    def level_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Loss of one level, B x C x H x W each -> (B,)."""
        raise NotImplementedError

    def levels_loss(self, pairs: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Losses of all levels, (student, teacher) pairs -> levels x B: :meth:`level_loss` of each, unless a
        subclass computes the levels together."""
        return torch.stack([self.level_loss(s, t) for s, t in pairs])

    def forward(self, student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Compare lists of feature maps level by level.

        Args:
            student_feats, teacher_feats: equally long lists of B x C x H x W maps (H, W >= 4), equal shapes per
                level, on one device; any float dtype (half-precision maps are compared in float32, also inside
                an autocast region).

        Returns:
            ``loss_weight`` times the per-level, per-sample losses reduced by ``reduction``: a scalar for
            'mean' / 'sum', a (levels x B) tensor for 'none'; float32 (float64 for float64 maps), on the maps'
            device.
        """
        name = type(self).__name__
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(f'{name}: got {len(student_feats)} student and {len(teacher_feats)} teacher feature '
                             'maps; give one student map per teacher map (at least one)')
        for level, (s, t) in enumerate(zip(student_feats, teacher_feats)):
            if s.shape != t.shape or s.dim() != 4 or min(s.shape[-2:]) < 4:
                raise ValueError(f'{name}: level {level} has student {tuple(s.shape)} and teacher {tuple(t.shape)}; '
                                 'expected equal B x C x H x W shapes with H, W >= 4 (check the SCM output size)')
        with autocast_off(student_feats[0].device.type):
            losses = self.levels_loss([self.sample(s, t) for s, t in zip(student_feats, teacher_feats)])
            return self.loss_weight * reduce_loss(losses, self.reduction)


@LOSS_REGISTRY.register()
class FeatureL1Loss(FeatureListLoss):
    """Plain feature distillation: mean absolute difference of student and teacher feature maps, per level.

    What ``nc_opt`` / ``et_opt`` compare without the BRISQUE / PIQE extractors (the "w/o L_NC" and "w/o L_ET"
    ablations): the same taps and SCM, the raw maps instead of their statistics.

    Args:
        loss_weight: multiplier of the loss. Default 1.0.
        reduction: 'mean' | 'sum' | 'none' over levels and samples. Default 'mean'.
        sample_channels: as in :class:`BRISQUEFeatureLoss`; default 0 (all channels: the comparison is cheap).
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', sample_channels: Optional[int] = 0):
        super().__init__(loss_weight, reduction, sample_channels)

    def level_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return (student.float() - teacher.float()).abs().mean(dim=(1, 2, 3))
