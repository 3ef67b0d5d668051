import pytest
import torch
from basicsr.losses import build_loss

import slkd_basicsr  # noqa: F401  (registration)
from slkd_basicsr.losses.kd_loss import image_kl


def test_image_kl_weight_and_reductions():
    student, teacher = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8, requires_grad=True)
    per_channel = build_loss({'type': 'ImageKLLoss', 'temperature': 0.5, 'reduction': 'none'})(student, teacher)
    torch.testing.assert_close(per_channel, image_kl(student, teacher, 0.5))
    assert per_channel.shape == (2, 3) and (per_channel > 0).all()
    mean = build_loss({'type': 'ImageKLLoss', 'temperature': 0.5, 'loss_weight': 0.5})(student, teacher)
    total = build_loss({'type': 'ImageKLLoss', 'temperature': 0.5, 'reduction': 'sum'})(student, teacher)
    torch.testing.assert_close(mean, 0.5 * per_channel.mean())
    torch.testing.assert_close(total, per_channel.sum())
    mean.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None  # the teacher's output is only a target
    assert build_loss({'type': 'ImageKLLoss'})(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_image_kl_rejects_bad_options_and_shapes():
    with pytest.raises(ValueError, match='Unsupported reduction mode'):
        build_loss({'type': 'ImageKLLoss', 'reduction': 'max'})
    with pytest.raises(ValueError, match='temperature'):
        build_loss({'type': 'ImageKLLoss', 'temperature': 0})
    with pytest.raises(ValueError, match='same size'):
        build_loss({'type': 'ImageKLLoss'})(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 4, 4))


@pytest.mark.parametrize('size', [32, 64, 128])
def test_image_kl_carries_a_fifth_of_the_pixel_gradient_at_any_size(size):
    """At the published weight 0.5 and the default temperature, L_KL's gradient on the student output is at
    least 20% of the weight-1 L1 pixel loss's when student and teacher differ by N(0, 0.02^2) noise."""
    generator = torch.Generator().manual_seed(size)
    teacher = torch.rand(2, 3, size, size, generator=generator)
    student = (teacher + 0.02 * torch.randn(teacher.shape, generator=generator)).requires_grad_()

    def grad_norm(loss: torch.nn.Module) -> float:
        (grad, ) = torch.autograd.grad(loss(student, teacher), student)
        return grad.norm().item()

    kl = grad_norm(build_loss({'type': 'ImageKLLoss', 'loss_weight': 0.5}))
    pixel = grad_norm(build_loss({'type': 'L1Loss', 'loss_weight': 1.0}))
    assert 0.2 <= kl / pixel <= 1.0
