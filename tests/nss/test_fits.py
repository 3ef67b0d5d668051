import numpy as np
import pytest
import torch
from nss.oracles import fit_aggd

from slkd_basicsr.nss.fits import fit_ggd, solve_shape


@pytest.mark.parametrize('shape', [0.5, 1.0, 2.0, 4.5])
def test_shape_fits_recover_generalised_gaussians(shape):
    x = torch.from_numpy(np.random.default_rng(2).gamma(1 / shape, 1, 400_000)**(1 / shape))
    x = x * torch.from_numpy(np.random.default_rng(3).choice([-1.0, 1.0], x.numel()))
    hard, variance = fit_ggd(x, 'grid')
    smooth, _ = fit_ggd(x, 'interp', eps=1e-12)
    assert hard.item() == pytest.approx(shape, rel=0.05)
    assert smooth.item() == pytest.approx(hard.item(), abs=2e-3)
    assert variance.item() == pytest.approx(x.square().mean().item())
    ratio, _ = fit_ggd(x, 'ratio')
    assert solve_shape(ratio, 'interp').item() == pytest.approx(smooth.item())
    aggd = fit_aggd(x, 'grid')
    assert aggd[0].item() == pytest.approx(shape, rel=0.05) and abs(aggd[1].item()) < 0.05 * variance.sqrt().item()


def test_smooth_shape_is_monotone_and_clamped():
    ratio = torch.linspace(0.0, 0.8, 2001, dtype=torch.float32)
    shape = solve_shape(ratio, 'interp')
    assert (shape.diff() >= 0).all() and shape[0] == pytest.approx(0.2) and shape[-1] == pytest.approx(10.0)


@pytest.mark.parametrize('method', ['ratio', 'interp'])
def test_aggd_gradient_is_finite_when_one_side_is_empty(method):
    # all-positive samples (as the neighbour products of a tiny, smooth feature map can be): no left side
    x = (torch.rand(3, 16, dtype=torch.float64) + 0.1).requires_grad_(True)
    fit_aggd(x, method, eps=1e-6).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() < 1e4


@pytest.mark.parametrize('method', ['ratio', 'interp'])
def test_moment_backward_is_exact(method):
    x = torch.randn(2, 30, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fit_aggd(t, method, eps=1e-6), (x, ))
