"""Image-level distillation term L_KL."""
import torch
import torch.nn.functional as F
from basicsr.losses.basic_loss import _reduction_modes
from basicsr.losses.loss_util import reduce_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from slkd_basicsr.nss.device import autocast_off

# With T = 0.2 the weight-0.5 term's gradient is about 30% of the weight-1 L1 pixel loss's when student and
# teacher differ by N(0, 0.02^2) noise, at 32, 64 and 128 px alike (tests/losses/test_kd_loss.py measures it)
DEFAULT_TEMPERATURE = 0.2


def image_kl(pred: torch.Tensor, target: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """Channel-wise KL divergence KL(target || pred) between spatial softmax distributions, scale-free.

    Per image and channel, the H*W pixel values divided by ``temperature`` are turned into a
    distribution with a softmax (channel-wise distillation): KL = sum_i p_i (log p_i - log q_i) with
    p = softmax(target / T), q = softmax(pred / T) over the H*W pixels. There is deliberately no T^2
    factor (Hinton's, meant for class logits): for a small difference d = pred - target the divergence is
    about Var(d) / (2 T^2), independent of H*W, and its gradient per pixel is about (d_i - mean(d)) /
    (H*W*T^2) against the mean L1 loss's sign(d_i) / (H*W), so their ratio depends on T and d, never on
    the image size. Scaled by T^2 the term would be Var(d) / 2 whatever T, i.e. numerically dead for
    images in [0, 1].

    Args:
        pred: Student output, B x C x H x W, any range (restored images are about [0, 1]).
        target: Teacher output, same shape. It gets no gradient.
        temperature: Softmax temperature T > 0.

    Returns:
        B x C tensor of divergences (>= 0), computed in float32 (also inside an autocast region), on the inputs'
        device.
    """
    if pred.shape != target.shape:
        raise ValueError(f'ImageKLLoss: student output {tuple(pred.shape)} and teacher output '
                         f'{tuple(target.shape)} differ; teacher and student must restore to the same size.')
    with autocast_off(pred.device.type):
        log_p_student = F.log_softmax(pred.float().flatten(2) / temperature, dim=-1)
        log_p_teacher = F.log_softmax(target.detach().float().flatten(2) / temperature, dim=-1)
        return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)


@LOSS_REGISTRY.register()
class ImageKLLoss(nn.Module):
    """L_KL: :func:`image_kl` between the student's and Teacher A's restored images.

    Args:
        loss_weight: Multiplier (lambda_kl; the paper uses 0.5). Default: 1.0.
        temperature: Softmax temperature T; smaller is sharper and stronger. Default: 0.2.
        reduction: 'mean' | 'sum' | 'none' over the B x C divergences. Default: 'mean'.
    """

    def __init__(self, loss_weight: float = 1.0, temperature: float = DEFAULT_TEMPERATURE, reduction: str = 'mean'):
        super().__init__()
        if reduction not in _reduction_modes:
            raise ValueError(f'Unsupported reduction mode: {reduction}. Supported ones are: {_reduction_modes}')
        if temperature <= 0:
            raise ValueError(f'ImageKLLoss temperature must be > 0, got {temperature}.')
        self.loss_weight = loss_weight
        self.temperature = temperature
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred: student output, target: teacher output, both B x C x H x W."""
        return self.loss_weight * reduce_loss(image_kl(pred, target, self.temperature), self.reduction)
