"""The NSS maths keep float32 / float64 under autocast and hold their constants once per device."""
from functools import partial

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

from device_util import CopyCounter
from slkd_basicsr.nss.blocks import block_sums
from slkd_basicsr.nss.brisque import brisque_statistics
from slkd_basicsr.nss.filters import mscn
from slkd_basicsr.nss.fits import fit_ggd, solve_shape
from slkd_basicsr.nss.neighbours import fit_neighbour_aggd
from slkd_basicsr.nss.piqe import piqe_block_maps
from slkd_basicsr.nss.resize import half_resize

# each NSS entry point as a function of one B x C x H x W map returning one tensor
FUNCTIONS = {
    'mscn': partial(mscn, c=0.1, padding='replicate', eps=1e-6),
    'half_resize': half_resize,
    'block_sums': lambda x: block_sums(x, 4, 3)[1],
    'fit_ggd interp': lambda x: fit_ggd(x.flatten(-2), 'interp', 1e-6)[0],
    'fit_neighbour_aggd': lambda x: fit_neighbour_aggd(x, 'interp', 1e-6),
    'brisque_statistics': partial(brisque_statistics, c=0.1, shape='ratio', eps=1e-6),
    'piqe_block_maps': partial(piqe_block_maps, block_size=4, segment_size=3, temperature=0.02, eps=1e-6),
}


def _map(shape=(2, 3, 16, 16), dtype=torch.bfloat16) -> torch.Tensor:
    """A feature-like map, O(1) values, in ``dtype``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize('name', FUNCTIONS)
def test_autocast_leaves_the_maths_in_float32(name):
    fn = FUNCTIONS[name]
    x = _map()
    expected = fn(x.float())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        result = fn(x)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, expected, rtol=0, atol=0)


def test_interp_shapes_of_bfloat16_ratios_are_solved_on_a_full_precision_table():
    # about 150 distinct bfloat16 ratios: a table rounded to bfloat16 would merge its neighbouring grid steps
    ratios = torch.linspace(0.3, 0.7, 300).bfloat16().unique()
    shapes = solve_shape(ratios, 'interp')
    assert shapes.dtype == torch.float32
    assert (shapes.diff() > 0).all(), 'distinct ratios must give distinct shapes'
    torch.testing.assert_close(shapes, solve_shape(ratios.float(), 'interp'), rtol=0, atol=0)


@pytest.mark.parametrize('name', FUNCTIONS)
def test_constants_are_moved_once_per_device(name):
    x = _map(dtype=torch.float32).to('meta')
    FUNCTIONS[name](x)
    with CopyCounter() as counter:
        FUNCTIONS[name](x)
    assert counter.h2d == 0, counter.events


def test_constants_built_under_inference_mode_can_be_saved_for_backward():
    shape = (1, 1, 17, 19)  # sizes no other test uses: the constants are first built here
    with torch.inference_mode():
        mscn(torch.rand(shape, dtype=torch.float64))
    x = torch.rand(shape, dtype=torch.float64, requires_grad=True)
    mscn(x, eps=1e-6).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_fake_tensors_leave_no_fake_constant_behind():
    shape = (1, 2, 13, 11)  # sizes no other test uses: the constants are first asked for by fake tensors
    fn = FUNCTIONS['brisque_statistics']
    with FakeTensorMode():
        fake = fn(torch.randn(shape, device='cuda'))
    assert isinstance(fake, FakeTensor) and fake.device.type == 'cuda'
    x = torch.randn(shape, dtype=torch.float64)
    real = fn(x.float())
    assert type(real) is torch.Tensor
    torch.testing.assert_close(real, fn(x).float(), rtol=1e-4, atol=1e-5)
