"""Natural-scene-statistics (NSS) building blocks shared by the BRISQUE and PIQE extractors.

Every function works on batched maps ``B x C x H x W`` (any float dtype) and is vectorised over batch,
channels, blocks and segments. Computation happens in float32, or in float64 when the input is float64,
so half-precision feature maps are safe. The same code serves two modes:

- *image mode* (metrics): grid search for the distribution shapes, exactly as the reference MATLAB code;
- *feature mode* (losses): differentiable shape estimates (or the moment ratios) and ``eps`` guards for flat or
  tiny maps.
"""
import math
from functools import lru_cache
from typing import Tuple

import numpy as np
import torch

PADDING_MODES = ('zero', 'replicate', 'reflect')
# How distribution shapes are reported: reference grid search, differentiable inverse, or the moment ratio itself.
SHAPE_METHODS = ('grid', 'interp', 'ratio')
NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
# Shape grid of the reference BRISQUE code (MATLAB 0.2:0.001:10).
SHAPE_GRID_START, SHAPE_GRID_STEP, SHAPE_GRID_SIZE = 0.2, 0.001, 9801
# Coarser grid for the differentiable inverse: consecutive ratios must stay distinct in float32.
SMOOTH_SHAPE_STEP, SMOOTH_SHAPE_SIZE = 0.02, 491


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs, float32 otherwise (half precision is too coarse for moment ratios)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@lru_cache(maxsize=None)
def _gaussian_matrix(length: int, padding: str, kernel_size: int, sigma: float) -> torch.Tensor:
    """L x L float64 matrix applying a normalised 1-D Gaussian along one axis, border handling folded in.

    Filtering as ``A_h @ x @ A_w^T`` is one matrix product per axis, several times faster on CPU than a
    single-channel convolution over B*C maps, and its backward is again two products.
    """
    taps = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()  # the outer product is MATLAB's normalised fspecial('gaussian')
    rows = torch.arange(length)[:, None].expand(length, kernel_size)
    cols = rows + taps.long()[None, :]
    weights = kernel[None, :].expand(length, kernel_size).clone()
    if padding == 'zero':
        weights[(cols < 0) | (cols >= length)] = 0
        cols = cols.clamp(0, length - 1)
    elif padding == 'replicate':
        cols = cols.clamp(0, length - 1)
    else:  # reflect about the edge sample, as torch's 'reflect' (folded repeatedly for tiny maps)
        period = max(2 * length - 2, 1)
        cols = cols.remainder(period)
        cols = torch.where(cols >= length, period - cols, cols)
    matrix = torch.zeros(length, length, dtype=torch.float64)
    matrix.index_put_((rows.reshape(-1), cols.reshape(-1)), weights.reshape(-1), accumulate=True)
    return matrix


def _gaussian_matrices(shape: torch.Size, padding: str, kernel_size: int, sigma: float,
                       like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row and column matrices of :func:`gaussian_filter` for maps of ``shape`` (... x H x W), as ``like``."""
    if padding not in PADDING_MODES:
        raise ValueError(f'padding must be one of {PADDING_MODES}, got {padding!r}')
    return tuple(
        _gaussian_matrix(length, padding, kernel_size, sigma).to(dtype=like.dtype, device=like.device)
        for length in shape[-2:])


def gaussian_filter(x: torch.Tensor, padding: str = 'zero', kernel_size: int = 7, sigma: float = 7 / 6) -> torch.Tensor:
    """Filter every channel of ``x`` (... x H x W) with a normalised separable Gaussian, output the same size.

    Args:
        padding: 'zero' (MATLAB ``filter2(..., 'same')``), 'replicate' (``imgaussfilt`` default) or 'reflect'.
    """
    rows, cols = _gaussian_matrices(x.shape, padding, kernel_size, sigma, x)
    return rows @ x @ cols.T


class _MSCN(torch.autograd.Function):
    """MSCN coefficients with a hand-written backward.

    Autograd would keep and allocate a dozen full-size intermediates; here the two filtered moments share one
    buffer, the forward works in place, and the backward filters both gradients with one pair of products
    (the adjoint of ``A x B^T`` is ``A^T g B``). Large fresh tensors are what these memory-bound maps cost most.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, c: float, eps: float) -> torch.Tensor:
        moments = x.new_empty(2, *x.shape)
        moments[0] = x
        torch.mul(x, x, out=moments[1])
        filtered = rows @ moments @ cols.T
        mu, local_var = filtered[0], filtered[1]
        local_var.addcmul_(mu, mu, value=-1)
        denom = local_var.abs().add_(eps).sqrt_().add_(c)
        m = torch.sub(x, mu).div_(denom)
        ctx.save_for_backward(x, m, mu, local_var, denom, rows, cols)
        ctx.c = c
        return m

    @staticmethod
    def backward(ctx, grad_m: torch.Tensor):
        x, m, mu, local_var, denom, rows, cols = ctx.saved_tensors
        direct = grad_m / denom  # through x - mu
        grads = x.new_empty(2, *x.shape)
        g_mu, g_var = grads[0], grads[1]
        # m = (x - mu) / (sqrt(|var| + eps) + c): d/dvar = -m / denom * sign(var) / (2 sqrt(|var| + eps))
        torch.mul(direct, m, out=g_var).mul_(local_var.sign()).div_(denom - ctx.c).mul_(-0.5)
        # var = G(x^2) - mu^2 and mu = G(x)
        torch.mul(mu, g_var, out=g_mu).mul_(-2).sub_(direct)
        filtered = rows.T @ grads @ cols
        return direct.add_(filtered[0]).addcmul_(x, filtered[1], value=2), None, None, None, None


def mscn(x: torch.Tensor,
         c: float = 1.0,
         padding: str = 'zero',
         kernel_size: int = 7,
         sigma: float = 7 / 6,
         eps: float = 0.0) -> torch.Tensor:
    """Mean-subtracted contrast-normalised coefficients ``(x - mu) / (sqrt(|E[x^2] - mu^2| + eps) + c)``.

    Args:
        x: B x C x H x W, any range (images: [0, 255]).
        c: stabilising constant.
        padding: border handling of the Gaussian window, see :func:`gaussian_filter`.
        eps: added under the square root so that its gradient stays finite on flat regions (0 = reference).

    Returns:
        B x C x H x W in the compute dtype of ``x``.
    """
    x = x.to(compute_dtype(x)).contiguous()
    rows, cols = _gaussian_matrices(x.shape, padding, kernel_size, sigma, x)
    return _MSCN.apply(x, rows, cols, float(c), float(eps))


def _wrap_pieces(length: int, shift: int) -> Tuple[Tuple[slice, slice], ...]:
    """(target, source) index ranges along one axis with ``out[i] = x[(i - shift) mod length]``."""
    shift %= length
    pieces = ((slice(shift, length), slice(0, length - shift)), (slice(0, shift), slice(length - shift, length)))
    return tuple(piece for piece in pieces if piece[0].start != piece[0].stop)


def _shift_pieces(h: int, w: int, di: int, dj: int):
    """Pairs of (target, source) 2-D index tuples that together make a circular shift by (di, dj) of an h x w map.

    Working on these views instead of a padded copy lets shifted products be written straight into a buffer.
    """
    for rows_to, rows_from in _wrap_pieces(h, di):
        for cols_to, cols_from in _wrap_pieces(w, dj):
            yield (..., rows_to, cols_to), (..., rows_from, cols_from)


def _shifted_product(m: torch.Tensor, di: int, dj: int, out: torch.Tensor) -> torch.Tensor:
    """Write ``m * circshift(m, (di, dj))`` (MATLAB's circshift: ``out[i, j] = m[i, j] m[i - di, j - dj]``) to out."""
    for target, source in _shift_pieces(*m.shape[-2:], di, dj):
        torch.mul(m[target], m[source], out=out[target])
    return out


def neighbour_products(m: torch.Tensor) -> torch.Tensor:
    """Products of ``m`` (B x C x H x W) with its circular shifts (0,1), (1,0), (1,1), (-1,1): B x C x 4 x H x W."""
    out = m.new_empty(*m.shape[:-2], len(NEIGHBOUR_SHIFTS), *m.shape[-2:])
    for k, (di, dj) in enumerate(NEIGHBOUR_SHIFTS):
        _shifted_product(m, di, dj, out[..., k, :, :])
    return out


def to_blocks(x: torch.Tensor, n: int) -> torch.Tensor:
    """Cut B x C x H x W (H, W multiples of n) into non-overlapping blocks: B x C x H/n x W/n x n x n."""
    b, c, h, w = x.shape
    if h % n or w % n:
        raise ValueError(f'map size {h}x{w} is not a multiple of the block size {n}')
    return x.reshape(b, c, h // n, n, w // n, n).transpose(-3, -2)


@lru_cache(maxsize=None)
def _window_matrix(n: int, segment: int) -> torch.Tensor:
    """n x (n - segment + 1) float64 0/1 matrix whose column k sums samples k .. k + segment - 1."""
    index = torch.arange(n)[:, None] - torch.arange(n - segment + 1)[None, :]
    return ((index >= 0) & (index < segment)).to(torch.float64)


def _block_edges(blocks: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Views of the top, right, bottom and left border samples of ... x n x n blocks, each ... x n."""
    return blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]


class _BlockSums(torch.autograd.Function):
    """Column sums and border run sums of n x n blocks, with a backward that writes each gradient once.

    Autograd of the slicing, stacking and windowing would build a full-size zero tensor per border view.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int, segment: int) -> Tuple[torch.Tensor, torch.Tensor]:
        blocks = to_blocks(x, n)
        window = _window_matrix(n, segment).to(dtype=x.dtype, device=x.device)
        ctx.save_for_backward(window)
        ctx.shape, ctx.n = x.shape, n
        return blocks.sum(-2), torch.stack(_block_edges(blocks), dim=-2) @ window

    @staticmethod
    def backward(ctx, grad_columns: torch.Tensor, grad_runs: torch.Tensor):
        window, = ctx.saved_tensors
        grad_x = grad_columns.new_empty(ctx.shape)
        grad_blocks = to_blocks(grad_x, ctx.n)
        grad_blocks.copy_(grad_columns[..., None, :].expand_as(grad_blocks))
        grad_edges = grad_runs @ window.T
        for k, edge in enumerate(_block_edges(grad_blocks)):
            edge.add_(grad_edges[..., k, :])
        return grad_x, None, None


def block_sums(x: torch.Tensor, n: int, segment: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sums over the n x n blocks of ``x`` (B x C x H x W, H and W multiples of n) that PIQE's statistics need.

    Returns:
        column sums B x C x H/n x W/n x n (one per block column), and sums of every run of ``segment``
        consecutive samples along the top, right, bottom and left borders: B x C x H/n x W/n x 4 x (n-segment+1).
    """
    return _BlockSums.apply(x, n, segment)


def _safe_div(num: torch.Tensor, den: torch.Tensor, eps: float) -> torch.Tensor:
    """``num / (den + eps)``; with eps = 0 a zero denominator gives 0 instead of NaN (dens are never negative)."""
    return num / (den + eps).clamp_min(torch.finfo(den.dtype).tiny)


def _log_gamma_ratio(shape: torch.Tensor) -> torch.Tensor:
    """``log(Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)))``, the generalised Gaussian moment ratio E|x|^2 / E[x^2]."""
    inv = 1.0 / shape
    return 2 * torch.lgamma(2 * inv) - torch.lgamma(inv) - torch.lgamma(3 * inv)


@lru_cache(maxsize=None)
def _shape_table(start: float, step: float, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Shape grid and its (increasing) ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)), float64."""
    shapes = start + step * torch.arange(size, dtype=torch.float64)
    return shapes, _log_gamma_ratio(shapes).exp()


def _nearest_on_grid(value: torch.Tensor, table: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Grid entry whose (monotone increasing) table value is nearest to ``value``; ties go to the first entry."""
    value64 = value.detach().to(torch.float64)
    upper = torch.searchsorted(table, value64.contiguous()).clamp(1, table.numel() - 1)
    lower = upper - 1
    pick_upper = (table[upper] - value64).abs() < (value64 - table[lower]).abs()
    return grid[torch.where(pick_upper, upper, lower)].to(value.dtype)


def _interp_on_grid(value: torch.Tensor, table: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear inverse of the monotone table: differentiable in ``value``, clamped to the grid ends."""
    table = table.to(value.dtype)
    grid = grid.to(value.dtype)
    upper = torch.searchsorted(table, value.detach().contiguous()).clamp(1, table.numel() - 1)
    t0, t1 = table[upper - 1], table[upper]
    frac = ((value - t0) / (t1 - t0)).clamp(0.0, 1.0)
    return grid[upper - 1] + frac * (grid[upper] - grid[upper - 1])


def solve_shape(ratio: torch.Tensor, method: str) -> torch.Tensor:
    """Generalised Gaussian shape ``a`` with Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) = ratio.

    Args:
        ratio: any shape, values in (0, 0.75); E|x|^2 / E[x^2] for a symmetric fit.
        method: 'grid' = nearest point of the reference grid 0.2:0.001:10 (not differentiable); 'interp' (or
            'ratio', whose callers still need the shape) = monotone piecewise-linear interpolation of the inverse
            on a 0.02 grid, clamped to [0.2, 10] (differentiable).
    """
    if method not in SHAPE_METHODS:
        raise ValueError(f'shape method must be one of {SHAPE_METHODS}, got {method!r}')
    if method == 'grid':
        grid, table = _shape_table(SHAPE_GRID_START, SHAPE_GRID_STEP, SHAPE_GRID_SIZE)
        return _nearest_on_grid(ratio, table.to(ratio.device), grid.to(ratio.device))
    grid, table = _shape_table(SHAPE_GRID_START, SMOOTH_SHAPE_STEP, SMOOTH_SHAPE_SIZE)
    return _interp_on_grid(ratio, table.to(ratio.device), grid.to(ratio.device))


def fit_ggd(x: torch.Tensor, method: str, eps: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Moment-matching fit of a zero-mean generalised Gaussian over the last dimension of ``x``.

    The reference matches E[x^2] / E|x|^2 against Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2 by nearest value;
    'grid' reproduces that metric, 'interp' inverts the reciprocal ratio smoothly.

    Args:
        method: see :data:`SHAPE_METHODS`; 'ratio' reports E|x|^2 / E[x^2] (a monotone function of the shape,
            in [0, 0.75], better conditioned as a training target than the shape itself).

    Returns:
        shape ``a`` (or its ratio) and variance ``E[x^2]``, each of shape ``x.shape[:-1]``.
    """
    # norms read x once each, with no squared or absolute copy of it
    variance = torch.linalg.vector_norm(x, 2, dim=-1).square() / x.shape[-1]
    mean_abs = torch.linalg.vector_norm(x, 1, dim=-1) / x.shape[-1]
    if method == 'grid':
        grid, table = _shape_table(SHAPE_GRID_START, SHAPE_GRID_STEP, SHAPE_GRID_SIZE)
        grid, table = grid.to(x.device), table.to(x.device)
        # The reference is nearest in E[x^2]/E|x|^2, which is decreasing in a: search the reversed reciprocal.
        rho = _safe_div(variance, mean_abs.square(), 0.0)
        return _nearest_on_grid(rho, table.reciprocal().flip(0), grid.flip(0)), variance
    ratio = _safe_div(mean_abs.square(), variance, eps)
    return (ratio if method == 'ratio' else solve_shape(ratio, method)), variance


def _moment_rows(samples: torch.Tensor) -> torch.Tensor:
    """An empty ... x 4 x N buffer for :func:`_signed_moments`, its last row set to ones."""
    rows = samples.new_empty(*samples.shape[:-1], 4, samples.shape[-1])
    rows[..., 3, :] = 1
    return rows


def _fill_sign_rows(rows: torch.Tensor) -> None:
    """Overwrite rows 1 and 2 of a :func:`_moment_rows` buffer with sign(x) and min(x, 0) of its row 0."""
    x = rows[..., 0, :]
    torch.sign(x, out=rows[..., 1, :])
    torch.clamp(x, max=0, out=rows[..., 2, :])


def _signed_moments(rows: torch.Tensor) -> torch.Tensor:
    """Sums over N samples of [x^2 on x < 0, x^2 on x > 0, |x|, x^2] and counts of x < 0, x > 0: ... x 6.

    ``rows`` (... x 4 x N, from :func:`_moment_rows`) holds the samples x in row 0; rows 1 and 2 are
    overwritten by :func:`_fill_sign_rows`. Every sum is then an entry of the rows' Gram matrix, so one matrix
    product reads the samples once instead of one masked pass per statistic (x.sign = sum |x|, sign.sign =
    count of non-zeros, sign.1 = positives - negatives).
    """
    _fill_sign_rows(rows)
    gram = rows @ rows.transpose(-1, -2)
    left, square, nonzero, balance = gram[..., 2, 2], gram[..., 0, 0], gram[..., 1, 1], gram[..., 1, 3]
    return torch.stack([left, square - left, gram[..., 0, 1], square, (nonzero - balance) / 2,
                        (nonzero + balance) / 2], dim=-1)


def _signed_moments_grad(rows: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Gradient wrt x of :func:`_signed_moments` (its counts are piecewise constant) given ``grad`` (..., 6).

    ``rows`` is as :func:`_signed_moments` left it. d/dx = 2 x (g_right + g_square) + sign(x) g_abs
    + 2 min(x, 0) (g_left - g_right): one matrix product with the first three rows. Returns ... x N.
    """
    g_left, g_right, g_abs, g_square = grad[..., :4].unbind(-1)
    coefficients = torch.stack([2 * (g_right + g_square), g_abs, 2 * (g_left - g_right)], dim=-1)
    return (coefficients[..., None, :] @ rows[..., :3, :]).squeeze(-2)


class _SignedMoments(torch.autograd.Function):
    """:func:`_signed_moments` of ... x N samples with a hand-written backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rows = _moment_rows(x)
        rows[..., 0, :] = x
        ctx.save_for_backward(rows)
        return _signed_moments(rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        rows, = ctx.saved_tensors
        return _signed_moments_grad(rows, grad)


class _NeighbourMoments(torch.autograd.Function):
    """:func:`_signed_moments` of the four neighbour products of B x C x H x W: B x C x 4 x 6.

    Each product is written into one reused buffer and never kept: backward recomputes it, which saves memory
    and allocations (on a CPU, fresh large tensors cost more than the arithmetic); these sums dominate the
    cost of the BRISQUE loss.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        m = m.contiguous()
        ctx.save_for_backward(m)
        rows = _moment_rows(m.flatten(-2))
        product = rows[..., 0, :].unflatten(-1, m.shape[-2:])
        moments = []
        for di, dj in NEIGHBOUR_SHIFTS:
            _shifted_product(m, di, dj, product)
            moments.append(_signed_moments(rows))
        return torch.stack(moments, dim=2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        m, = ctx.saved_tensors
        rows = _moment_rows(m.flatten(-2))
        product = rows[..., 0, :].unflatten(-1, m.shape[-2:])
        grad_m = torch.zeros_like(m)
        for k, (di, dj) in enumerate(NEIGHBOUR_SHIFTS):
            _shifted_product(m, di, dj, product)
            _fill_sign_rows(rows)
            grad_p = _signed_moments_grad(rows, grad[..., k, :]).view_as(m)
            # d(m_i m_{i-d})/dm: the term where m is the first factor, and the one where it is the shifted one
            for target, source in _shift_pieces(*m.shape[-2:], di, dj):
                grad_m[target].addcmul_(grad_p[target], m[source])
                grad_m[source].addcmul_(grad_p[target], m[target])
        return grad_m


def _aggd_from_moments(moments: torch.Tensor, count: int, method: str, eps: float) -> torch.Tensor:
    """AGGD parameters (..., 4) from :func:`_signed_moments` (..., 6) of ``count`` samples."""
    left_sum, right_sum, abs_sum, square_sum, n_left, n_right = moments.unbind(-1)
    # an empty side has a zero sum: dividing by at least 1 keeps its value 0 and its gradient finite (a tiny
    # denominator would turn the cancelling left/right terms of the backward pass into inf - inf)
    left_var = left_sum / n_left.clamp_min(1)
    right_var = right_sum / n_right.clamp_min(1)
    left_std, right_std = (left_var + eps).sqrt(), (right_var + eps).sqrt()
    gamma_hat = _safe_div(left_std, right_std, eps)
    r_hat = _safe_div((abs_sum / count).square(), square_sum / count, eps)
    r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1).square()
    nu = solve_shape(r_hat_norm, method)
    inv = 1.0 / nu
    eta = (right_std - left_std) * torch.exp(torch.lgamma(2 * inv) - 0.5 * (torch.lgamma(inv) + torch.lgamma(3 * inv)))
    return torch.stack([r_hat_norm if method == 'ratio' else nu, eta, left_var, right_var], dim=-1)


def fit_aggd(x: torch.Tensor, method: str, eps: float = 0.0) -> torch.Tensor:
    """Moment-matching fit of an asymmetric generalised Gaussian over the last dimension of ``x``.

    Args:
        method: see :func:`fit_ggd`; with 'ratio' the first output is the normalised moment ratio r_hat_norm.

    Returns:
        ``x.shape[:-1] + (4,)``: shape nu, mean eta = (sr - sl) Gamma(2/nu) / sqrt(Gamma(1/nu) Gamma(3/nu)),
        left variance sl^2 = E[x^2 | x < 0] and right variance sr^2 = E[x^2 | x > 0] (0 when no such sample).
    """
    return _aggd_from_moments(_SignedMoments.apply(x), x.shape[-1], method, eps)


def fit_neighbour_aggd(m: torch.Tensor, method: str, eps: float = 0.0) -> torch.Tensor:
    """:func:`fit_aggd` of each of the four :func:`neighbour_products` of ``m`` (B x C x H x W): B x C x 4 x 4."""
    return _aggd_from_moments(_NeighbourMoments.apply(m), m.shape[-2] * m.shape[-1], method, eps)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel with a = -0.5 (MATLAB ``imresize`` 'bicubic')."""
    ax = np.abs(x)
    inner = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    return inner + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=None)
def _half_resize_matrix(length: int) -> np.ndarray:
    """Dense ceil(L/2) x L matrix of MATLAB ``imresize(.., 0.5)`` (bicubic, antialiased, symmetric borders)."""
    scale, out_length = 0.5, math.ceil(length * 0.5)
    width = 4.0 / scale
    u = np.arange(1, out_length + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = scale * _cubic(scale * (u[:, None] - indices))
    weights = weights / weights.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    cols = mirror[np.mod(indices.astype(np.int64) - 1, 2 * length)]
    matrix = np.zeros((out_length, length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), cols.ravel()), weights.ravel())
    return matrix


def half_resize(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(x, 0.5)`` (bicubic with antialiasing) of B x C x H x W -> ceil(H/2) x ceil(W/2)."""
    rows = torch.from_numpy(_half_resize_matrix(x.shape[-2])).to(dtype=x.dtype, device=x.device)
    cols = torch.from_numpy(_half_resize_matrix(x.shape[-1])).to(dtype=x.dtype, device=x.device)
    return rows @ x @ cols.T
