import numpy as np
import pytest
import torch
from scipy import ndimage

import nss_reference  # tests/metrics is on sys.path (pytest rootdir-less test folders)
import slkd_basicsr  # noqa: F401  (BasicSR compatibility before importing basicsr)
from basicsr.utils.matlab_functions import imresize
from slkd_basicsr.metrics import nss_util


@pytest.mark.parametrize('size', [(16, 16), (23, 37), (9, 8)])
def test_half_resize_is_matlab_imresize(size):
    img = np.random.default_rng(0).uniform(0, 255, size)
    ours = nss_util.half_resize(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, nss_reference.imresize_half(img), rtol=1e-12, atol=1e-10)
    # BasicSR's MATLAB port (float32) as a second, independent check
    np.testing.assert_allclose(ours, imresize(img[..., None] / 255, 0.5)[..., 0] * 255, atol=1e-3)


@pytest.mark.parametrize('padding, scipy_mode', [('zero', 'constant'), ('replicate', 'nearest'), ('reflect', 'mirror')])
def test_mscn_paddings(padding, scipy_mode):
    img = np.random.default_rng(1).uniform(0, 255, (12, 15))
    window = nss_reference.fspecial_gaussian()
    mu = ndimage.correlate(img, window, mode=scipy_mode)
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, window, mode=scipy_mode) - mu * mu))
    ours = nss_util.mscn(torch.from_numpy(img)[None, None], 2.0, padding)[0, 0].numpy()
    np.testing.assert_allclose(ours, (img - mu) / (sigma + 2.0), rtol=1e-10, atol=1e-12)


def test_neighbour_products_use_circular_shifts():
    m = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    products = nss_util.neighbour_products(m)
    assert products.shape == (2, 3, 4, 5, 6)
    for k, shift in enumerate([(0, 1), (1, 0), (1, 1), (-1, 1)]):
        expected = m.numpy() * np.roll(m.numpy(), shift, axis=(2, 3))
        np.testing.assert_allclose(products[:, :, k].numpy(), expected)


def test_to_blocks_is_a_non_overlapping_partition():
    x = torch.arange(2 * 8 * 12, dtype=torch.float32).reshape(1, 2, 8, 12)
    blocks = nss_util.to_blocks(x, 4)
    assert blocks.shape == (1, 2, 2, 3, 4, 4)
    assert torch.equal(blocks[0, 1, 1, 2], x[0, 1, 4:8, 8:12])
    with pytest.raises(ValueError, match='multiple of the block size'):
        nss_util.to_blocks(x, 5)


@pytest.mark.parametrize('shape', [0.5, 1.0, 2.0, 4.5])
def test_shape_fits_recover_generalised_gaussians(shape):
    x = torch.from_numpy(np.random.default_rng(2).gamma(1 / shape, 1, 400_000)**(1 / shape))
    x = x * torch.from_numpy(np.random.default_rng(3).choice([-1.0, 1.0], x.numel()))
    hard, variance = nss_util.fit_ggd(x, 'grid')
    smooth, _ = nss_util.fit_ggd(x, 'interp', eps=1e-12)
    assert hard.item() == pytest.approx(shape, rel=0.05)
    assert smooth.item() == pytest.approx(hard.item(), abs=2e-3)
    assert variance.item() == pytest.approx(x.square().mean().item())
    ratio, _ = nss_util.fit_ggd(x, 'ratio')
    assert nss_util.solve_shape(ratio, 'interp').item() == pytest.approx(smooth.item())
    aggd = nss_util.fit_aggd(x, 'grid')
    assert aggd[0].item() == pytest.approx(shape, rel=0.05) and abs(aggd[1].item()) < 0.05 * variance.sqrt().item()


def test_smooth_shape_is_monotone_and_clamped():
    ratio = torch.linspace(0.0, 0.8, 2001, dtype=torch.float32)
    shape = nss_util.solve_shape(ratio, 'interp')
    assert (shape.diff() >= 0).all() and shape[0] == pytest.approx(0.2) and shape[-1] == pytest.approx(10.0)


@pytest.mark.parametrize('method', ['ratio', 'interp'])
def test_aggd_gradient_is_finite_when_one_side_is_empty(method):
    # all-positive samples (as the neighbour products of a tiny, smooth feature map can be): no left side
    x = (torch.rand(3, 16, dtype=torch.float64) + 0.1).requires_grad_(True)
    nss_util.fit_aggd(x, method, eps=1e-6).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() < 1e4
    m = (torch.rand(1, 2, 4, 4, dtype=torch.float64) + 0.1).requires_grad_(True)
    nss_util.fit_neighbour_aggd(m, method, eps=1e-6).sum().backward()
    assert torch.isfinite(m.grad).all() and m.grad.abs().max() < 1e4


@pytest.mark.parametrize('padding', ['zero', 'replicate', 'reflect'])
def test_mscn_backward_is_exact(padding):
    x = (torch.rand(1, 2, 7, 9, dtype=torch.float64) * 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: nss_util.mscn(t, 0.3, padding, eps=1e-3), (x, ))


@pytest.mark.parametrize('method', ['ratio', 'interp'])
def test_moment_backward_is_exact(method):
    m = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: nss_util.fit_neighbour_aggd(t, method, eps=1e-6), (m, ))
    x = torch.randn(2, 30, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: nss_util.fit_aggd(t, method, eps=1e-6), (x, ))


def test_neighbour_moments_count_and_sum_each_side():
    m = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    m[0, 0, :2] = 0  # exact zeros are neither left nor right
    products = nss_util.neighbour_products(m).flatten(-2)
    left, right = products.clamp(max=0), products.clamp(min=0)
    expected = torch.stack([left.square().sum(-1), right.square().sum(-1), products.abs().sum(-1),
                            products.square().sum(-1), (products < 0).sum(-1), (products > 0).sum(-1)], dim=-1)
    torch.testing.assert_close(nss_util._NeighbourMoments.apply(m), expected.to(m.dtype))


@pytest.mark.parametrize('n, segment', [(4, 3), (6, 2), (16, 6)])
def test_block_sums_and_their_backward(n, segment):
    x = torch.randn(1, 2, 2 * n, 3 * n, dtype=torch.float64, requires_grad=True)
    columns, runs = nss_util.block_sums(x, n, segment)
    blocks = nss_util.to_blocks(x, n)
    torch.testing.assert_close(columns, blocks.sum(-2))
    edges = torch.stack([blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]], dim=-2)
    torch.testing.assert_close(runs, edges.unfold(-1, segment, 1).sum(-1))
    assert torch.autograd.gradcheck(lambda t: nss_util.block_sums(t, n, segment), (x, ))
