"""Feature-mode BRISQUE (L_NC) and PIQE (L_ET) distillation losses.

Both compare natural-scene statistics of student features (after the SCM) with those of teacher features,
level by level. Feature maps are not images: each channel is first scaled to unit root-mean-square (see
:func:`standardise`), so the MSCN constant ``c`` is in units of the channel's standard deviation and the losses
do not depend on the features' scale; all statistics are computed in float32 (float64 for float64 inputs).
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from basicsr.utils.registry import LOSS_REGISTRY

from slkd_basicsr.losses.feature_loss import DEFAULT_SAMPLE_CHANNELS, FeatureListLoss
from slkd_basicsr.nss.brisque import brisque_statistics_of_maps
from slkd_basicsr.nss.device import full_precision
from slkd_basicsr.nss.filters import PADDING_MODES, mscn
from slkd_basicsr.nss.piqe import piqe_block_maps


@full_precision
def standardise(x: torch.Tensor, padding: str) -> torch.Tensor:
    """Scale every channel of B x C x H x W to unit root-mean-square (around its mean unless padding is 'zero').

    MSCN is unchanged by adding a constant unless the Gaussian window pads with zeros, so the (detached) mean is
    removed only for 'replicate' / 'reflect', which keeps large offsets from eating float32 precision. The scale
    is not detached (exact gradients); its floor keeps constant maps finite. Returns the compute dtype of ``x``.
    """
    if padding != 'zero':
        x = x - x.mean(dim=(-2, -1), keepdim=True).detach()
    # a norm reads x once, with no squared copy of it
    mean_square = torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True).square() / (x.shape[-2] * x.shape[-1])
    return x / (mean_square + 1e-8).sqrt()


def stacked(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """The student's and the teacher's B x C x H x W maps as one 2B x C x H x W batch, in their common dtype.

    The statistics are per sample and channel, so computing them on the stack changes no value; it halves the
    number of operator launches, which dominate the cost on the small (sampled-channel) maps the losses see.
    """
    dtype = torch.promote_types(student.dtype, teacher.dtype)
    return torch.cat([student.to(dtype), teacher.to(dtype)])


def paired(statistic: Callable[[torch.Tensor], torch.Tensor], student: torch.Tensor,
           teacher: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``statistic`` of the student's and the teacher's B x C x H x W maps, computed in one call (:func:`stacked`)."""
    both = statistic(stacked(student, teacher))
    return both[:student.shape[0]], both[student.shape[0]:]


class _FeatureStatisticsLoss(FeatureListLoss):
    """Feature-list plumbing plus the MSCN options both extractors share."""

    def __init__(self, loss_weight: float, reduction: str, c: float, padding: str, eps: float,
                 sample_channels: Optional[int]):
        super().__init__(loss_weight, reduction, sample_channels)
        if padding not in PADDING_MODES:
            raise ValueError(f'{type(self).__name__}: padding must be one of {PADDING_MODES}, got {padding!r}')
        if c <= 0 or eps <= 0:
            raise ValueError(f'{type(self).__name__}: c and eps must be positive, got c={c}, eps={eps}')
        self.c = c
        self.padding = padding
        self.eps = eps


@LOSS_REGISTRY.register()
class BRISQUEFeatureLoss(_FeatureStatisticsLoss):
    """L_NC: L1 distance between the per-channel BRISQUE statistics of student and teacher features.

    Per channel and scale the 18 BRISQUE statistics (GGD shape and variance of the MSCN map, AGGD shape, mean
    and left/right variances of its four neighbour products), differentiable; a second scale (MATLAB bicubic
    0.5x) is added when the map's smaller side is at least ``2 * min_scale_size``.

    Args:
        loss_weight: multiplier of the loss. Default 1.0.
        reduction: 'mean' | 'sum' | 'none' over levels and samples. Default 'mean'.
        c: MSCN constant in units of the channel's standard deviation. Default 0.1.
        padding: Gaussian-window border, 'replicate' | 'reflect' | 'zero'. Default 'replicate'.
        eps: numerical guard under square roots and in ratios. Default 1e-6.
        min_scale_size: smallest side of the half-resolution map. Default 4.
        shape: how the 5 shape parameters per scale enter the comparison: 'ratio' (their moment ratios, a
            monotone function of the shape in [0, 0.75]; well conditioned) or 'interp' (the shapes themselves by
            interpolated inverse, in [0.2, 10]; their steep inverse slows optimisation). Default 'ratio'.
        sample_channels: channels per level compared at each call, drawn at random and the same for student
            and teacher (an unbiased estimate of the all-channel loss at a fixed cost); 0 or None compares all.
            Default 8.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', c: float = 0.1, padding: str = 'replicate',
                 eps: float = 1e-6, min_scale_size: int = 4, shape: str = 'ratio',
                 sample_channels: Optional[int] = DEFAULT_SAMPLE_CHANNELS):
        super().__init__(loss_weight, reduction, c, padding, eps, sample_channels)
        if shape not in ('ratio', 'interp'):
            raise ValueError(f"BRISQUEFeatureLoss: shape must be 'ratio' or 'interp', got {shape!r}")
        self.min_scale_size = min_scale_size
        self.shape = shape

    def statistics(self, xs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """B_i x C_i x H_i x W_i maps -> B_i x C_i x (18 or 36) differentiable BRISQUE statistics of each; the maps
        of equal shape at any scale are computed together (see :func:`brisque_statistics_of_maps`)."""
        num_scales = [2 if min(x.shape[-2:]) >= 2 * self.min_scale_size else 1 for x in xs]
        return brisque_statistics_of_maps([standardise(x, self.padding) for x in xs], num_scales, self.c,
                                          self.padding, self.shape, eps=self.eps)

    def levels_loss(self, pairs: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        stats = self.statistics([stacked(student, teacher) for student, teacher in pairs])
        return torch.stack([(both[:len(student)] - both[len(student):]).abs().mean(dim=(1, 2))
                            for both, (student, _) in zip(stats, pairs)])


@LOSS_REGISTRY.register()
class PIQEFeatureLoss(_FeatureStatisticsLoss):
    """L_ET: weighted L1 distance between per-channel PIQE block maps of student and teacher features.

    Per channel, the MSCN map is cut into n x n blocks (the map is cropped to a multiple of n) and each block gets
    smooth activity, border-impairment, noise and distortion values (MATLAB piqe's hard thresholds replaced by
    sigmoids of width ``temperature``). Blocks are weighted toward the teacher's active (edge/texture) blocks:
    weight = inactive_weight + (1 - inactive_weight) * teacher activity; the weighted mean is taken per channel,
    then averaged over channels.

    Args:
        loss_weight, reduction, c, padding, eps, sample_channels: as in :class:`BRISQUEFeatureLoss`, with the same
            defaults.
        block_size: block side n (images use 16); smaller maps use their smaller side. Default 4.
        segment_size: border run length for the impairment test (images use 6), at most n. Default 3.
        temperature: sigmoid width of the thresholds. Default 0.02.
        inactive_weight: weight of blocks the teacher finds inactive. Default 0.1.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', c: float = 0.1, padding: str = 'replicate',
                 eps: float = 1e-6, block_size: int = 4, segment_size: int = 3, temperature: float = 0.02,
                 inactive_weight: float = 0.1, sample_channels: Optional[int] = DEFAULT_SAMPLE_CHANNELS):
        super().__init__(loss_weight, reduction, c, padding, eps, sample_channels)
        if block_size < 4 or not 2 <= segment_size <= block_size or temperature <= 0 or not 0 <= inactive_weight <= 1:
            raise ValueError('PIQEFeatureLoss: need block_size >= 4, 2 <= segment_size <= block_size, '
                             'temperature > 0 and 0 <= inactive_weight <= 1; got '
                             f'{block_size}, {segment_size}, {temperature}, {inactive_weight}')
        self.block_size = block_size
        self.segment_size = segment_size
        self.temperature = temperature
        self.inactive_weight = inactive_weight

    def block_maps(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x C x 4 x H/n x W/n smooth activity, impairment, noise and distortion maps."""
        n = min(self.block_size, *x.shape[-2:])
        m = mscn(standardise(x, self.padding), self.c, self.padding, eps=self.eps)
        m = m[..., :m.shape[-2] // n * n, :m.shape[-1] // n * n]
        segment = min(self.segment_size, n)
        return piqe_block_maps(m, n, segment, self.temperature, matlab_surround=False, eps=self.eps)

    def level_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        student_maps, teacher_maps = paired(self.block_maps, student, teacher)
        weight = self.inactive_weight + (1 - self.inactive_weight) * teacher_maps[:, :, 0].detach()
        distance = (student_maps - teacher_maps).abs().mean(dim=2)
        # normalised per channel, so that the mean over channels (and a random subset of them) is unbiased
        return ((weight * distance).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))).mean(dim=1)
