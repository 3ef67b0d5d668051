import numpy as np
import pytest
import torch
from nss import reference
from scipy import ndimage

from slkd_basicsr.nss.filters import mscn


@pytest.mark.parametrize('padding, scipy_mode', [('zero', 'constant'), ('replicate', 'nearest'), ('reflect', 'mirror')])
def test_mscn_paddings(padding, scipy_mode):
    img = np.random.default_rng(1).uniform(0, 255, (12, 15))
    window = reference.fspecial_gaussian()
    mu = ndimage.correlate(img, window, mode=scipy_mode)
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, window, mode=scipy_mode) - mu * mu))
    ours = mscn(torch.from_numpy(img)[None, None], 2.0, padding)[0, 0].numpy()
    np.testing.assert_allclose(ours, (img - mu) / (sigma + 2.0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('padding', ['zero', 'replicate', 'reflect'])
def test_mscn_backward_is_exact(padding):
    x = (torch.rand(1, 2, 7, 9, dtype=torch.float64) * 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: mscn(t, 0.3, padding, eps=1e-3), (x, ))
