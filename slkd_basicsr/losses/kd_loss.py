"""Image-level distillation term L_KL."""
import torch
import torch.nn.functional as F
from basicsr.losses.basic_loss import _reduction_modes
from basicsr.losses.loss_util import reduce_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


def image_kl(pred: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Channel-wise KL divergence KL(target || pred) between spatial softmax distributions.

    Per image and channel, the H*W pixel values divided by ``temperature`` are turned into a
    distribution with a softmax (channel-wise distillation); the divergence is scaled by T^2 so that
    its gradient does not shrink as T grows.

    Args:
        pred: Student output, B x C x H x W, any range (restored images are about [0, 1]).
        target: Teacher output, same shape. It gets no gradient.
        temperature: Softmax temperature T > 0.

    Returns:
        B x C tensor of divergences (>= 0), computed in float32.
    """
    if pred.shape != target.shape:
        raise ValueError(f'ImageKLLoss: student output {tuple(pred.shape)} and teacher output '
                         f'{tuple(target.shape)} differ; teacher and student must restore to the same size.')
    log_p_student = F.log_softmax(pred.float().flatten(2) / temperature, dim=-1)
    log_p_teacher = F.log_softmax(target.detach().float().flatten(2) / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    return kl * temperature**2


@LOSS_REGISTRY.register()
class ImageKLLoss(nn.Module):
    """L_KL: :func:`image_kl` between the student's and Teacher A's restored images.

    Args:
        loss_weight: Multiplier (lambda_kl; the paper uses 0.5). Default: 1.0.
        temperature: Softmax temperature T. Default: 1.0.
        reduction: 'mean' | 'sum' | 'none' over the B x C divergences. Default: 'mean'.
    """

    def __init__(self, loss_weight: float = 1.0, temperature: float = 1.0, reduction: str = 'mean'):
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
