import numpy as np
import pytest
import torch
from nss.oracles import neighbour_products

from slkd_basicsr.nss.neighbours import _NeighbourMoments, fit_neighbour_aggd


def test_neighbour_products_use_circular_shifts():
    m = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    products = neighbour_products(m)
    assert products.shape == (2, 3, 4, 5, 6)
    for k, shift in enumerate([(0, 1), (1, 0), (1, 1), (-1, 1)]):
        expected = m.numpy() * np.roll(m.numpy(), shift, axis=(2, 3))
        np.testing.assert_allclose(products[:, :, k].numpy(), expected)


def test_neighbour_moments_count_and_sum_each_side():
    m = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    m[0, 0, :2] = 0  # exact zeros are neither left nor right
    products = neighbour_products(m).flatten(-2)
    left, right = products.clamp(max=0), products.clamp(min=0)
    expected = torch.stack([left.square().sum(-1), right.square().sum(-1), products.abs().sum(-1),
                            products.square().sum(-1), (products < 0).sum(-1), (products > 0).sum(-1)], dim=-1)
    torch.testing.assert_close(_NeighbourMoments.apply(m), expected.to(m.dtype))


@pytest.mark.parametrize('method', ['ratio', 'interp'])
def test_neighbour_aggd_gradient_is_finite_when_one_side_is_empty(method):
    # a tiny, smooth, all-positive map: every neighbour product is positive, no left side
    m = (torch.rand(1, 2, 4, 4, dtype=torch.float64) + 0.1).requires_grad_(True)
    fit_neighbour_aggd(m, method, eps=1e-6).sum().backward()
    assert torch.isfinite(m.grad).all() and m.grad.abs().max() < 1e4


@pytest.mark.parametrize('method', ['ratio', 'interp'])
def test_neighbour_moment_backward_is_exact(method):
    m = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fit_neighbour_aggd(t, method, eps=1e-6), (m, ))
