import numpy as np
import pytest
import torch
from basicsr.utils.matlab_functions import imresize
from nss import reference

from slkd_basicsr.nss.resize import half_resize


@pytest.mark.parametrize('size', [(16, 16), (23, 37), (9, 8)])
def test_half_resize_is_matlab_imresize(size):
    img = np.random.default_rng(0).uniform(0, 255, size)
    ours = half_resize(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, reference.imresize_half(img), rtol=1e-12, atol=1e-10)
    # BasicSR's MATLAB port (float32) as a second, independent check
    np.testing.assert_allclose(ours, imresize(img[..., None] / 255, 0.5)[..., 0] * 255, atol=1e-3)


@pytest.mark.parametrize('size', [(3, 2), (1, 5)])
def test_half_resize_mirrors_maps_shorter_than_the_kernel(size):
    # the kernel reaches 3 samples past each edge: MATLAB mirrors again, BasicSR's single mirrored copy is too short
    img = np.random.default_rng(0).uniform(0, 255, size)
    ours = half_resize(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, reference.imresize_half(img), rtol=1e-12, atol=1e-10)


def test_half_resize_backward_is_exact():
    x = torch.randn(1, 2, 9, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(half_resize, (x, ))
