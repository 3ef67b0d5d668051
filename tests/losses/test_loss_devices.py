"""Device placement, host-to-device copies and mixed precision of the distillation losses.

Without a GPU, CUDA is stood in for by ``meta`` tensors (no data, but real placement, dtypes and copies) and by
``FakeTensorMode`` tensors on 'cuda'.
"""
from functools import partial
from typing import Callable

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import slkd_basicsr  # noqa: F401  (registration)
from device_util import CopyCounter, assert_grads_placed, assert_placed
from slkd_basicsr.losses.feature_loss import FeatureL1Loss, FeatureListLoss
from slkd_basicsr.losses.kd_loss import ImageKLLoss
from slkd_basicsr.losses.nss_loss import BRISQUEFeatureLoss, PIQEFeatureLoss

SHAPE = (2, 12, 16, 16)  # more channels than the default sample_channels (8): channel sampling is active
LOSSES = {
    'BRISQUE': BRISQUEFeatureLoss,
    'BRISQUE all channels': partial(BRISQUEFeatureLoss, sample_channels=0),
    'PIQE': PIQEFeatureLoss,
    'PIQE all channels': partial(PIQEFeatureLoss, sample_channels=0),
    'FeatureL1 sampled': partial(FeatureL1Loss, sample_channels=8),
    'ImageKL': ImageKLLoss,
}


def _loss(loss_fn: Callable, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """The loss of one level (feature losses take lists of levels, ImageKLLoss one image pair)."""
    if isinstance(loss_fn, FeatureListLoss):
        return loss_fn([student], [teacher])
    return loss_fn(student, teacher)


def _pair(device: str = 'cpu', dtype: torch.dtype = torch.float32):
    """Student (requires grad) and teacher maps of SHAPE, O(1) values."""
    generator = torch.Generator().manual_seed(0)
    student, teacher = (torch.randn(SHAPE, generator=generator) for _ in range(2))
    return student.to(device, dtype).requires_grad_(), teacher.to(device, dtype)


def _check_forward_backward(loss_fn: Callable, student: torch.Tensor, teacher: torch.Tensor) -> None:
    """A float32 0-dim loss on the maps' device, and a gradient in the student's device and dtype."""
    loss = _loss(loss_fn, student, teacher)
    assert_placed(loss, student.device, torch.float32, 'loss')
    assert loss.dim() == 0
    loss.backward()
    assert_grads_placed([student])


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('name', LOSSES)
def test_meta_tensors_forward_and_backward(name, dtype):
    _check_forward_backward(LOSSES[name](), *_pair('meta', dtype))


@pytest.mark.parametrize('name', LOSSES)
def test_fake_cuda_tensors_forward(name):
    with FakeTensorMode():
        student, teacher = _pair('cuda')
        assert_placed(_loss(LOSSES[name](), student, teacher), student.device, torch.float32, 'loss')


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="autograd's engine needs a CUDA device to run a backward of fake CUDA tensors")
@pytest.mark.parametrize('name', LOSSES)
def test_fake_cuda_tensors_backward(name):
    with FakeTensorMode():
        _check_forward_backward(LOSSES[name](), *_pair('cuda'))


@pytest.mark.parametrize('name', LOSSES)
def test_fake_cpu_tensors_forward_and_backward(name):
    with FakeTensorMode():
        _check_forward_backward(LOSSES[name](), *_pair('cpu'))


@pytest.mark.parametrize('name', LOSSES)
def test_no_host_to_device_copy_once_warm(name):
    loss_fn = LOSSES[name]()
    student, teacher = _pair('meta')
    _loss(loss_fn, student, teacher).backward()  # warm-up: constants are moved to the device once
    with CopyCounter() as counter:
        _loss(loss_fn, student, teacher).backward()
    assert (counter.h2d, counter.d2h) == (0, 0), counter.events


def test_channel_generator_on_another_device_is_a_clear_error():
    loss_fn = BRISQUEFeatureLoss()
    loss_fn.generator = torch.Generator()
    with pytest.raises(ValueError, match=r'generator is on cpu but the features are on meta'):
        _loss(loss_fn, *_pair('meta'))


@pytest.mark.parametrize('dtype, autocast, backward_in_autocast', [
    (torch.bfloat16, True, False),
    (torch.bfloat16, True, True),
    (torch.float16, False, False),
])
@pytest.mark.parametrize('name', LOSSES)
def test_half_precision_maps_give_the_float32_loss(name, dtype, autocast, backward_in_autocast):
    loss_fn = LOSSES[name]()
    student, teacher = _pair('cpu', dtype)
    # the float32 loss and gradient of the same values; the same channels drawn (global generator, same seed)
    reference_student = student.detach().float().requires_grad_()
    torch.manual_seed(0)
    reference = _loss(loss_fn, reference_student, teacher.float())
    reference.backward()
    torch.manual_seed(0)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        loss = _loss(loss_fn, student, teacher)
        if backward_in_autocast:
            loss.backward()
    if not backward_in_autocast:
        loss.backward()
    assert_placed(loss, student.device, torch.float32, 'loss')
    assert_grads_placed([student])
    # the maths run in float32 whatever the autocast state: equal up to float32 reordering
    torch.testing.assert_close(loss, reference, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(student.grad, reference_student.grad.to(dtype), rtol=1e-6, atol=1e-8)


def test_copy_counter_sees_each_kind_of_host_to_device_copy():
    x = torch.zeros(4, device='meta')
    with CopyCounter() as counter:
        torch.ones(4).to('meta')  # a copy
        x.copy_(torch.ones(4))  # a copy into a device tensor
        x.index_select(0, torch.tensor([0, 1]))  # a device op reading a host index
        torch.tensor([1.0, 2.0], device='meta')  # Python data made straight into a device tensor
        x[[0, 1]]  # a list index, made into a device index tensor
        x * torch.tensor(2.0)  # a 0-dim host tensor is a scalar: no copy
        torch.randperm(4, device='meta')  # drawn on the device: no copy
    assert counter.h2d == 5 and counter.d2h == 0, counter.events
    with FakeTensorMode():
        y = torch.zeros(4, device='cuda')
        with CopyCounter() as counter:
            y.cpu()  # a device-to-host copy
            torch.zeros(4).cuda()
    assert (counter.h2d, counter.d2h) == (1, 1), counter.events
