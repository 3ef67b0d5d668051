"""Straightforward NumPy/SciPy transcriptions of the reference BRISQUE features and MATLAB's piqe.

Written independently of the package (loops, full grid searches, SciPy filtering) so that the tests compare
two implementations of the published formulas. Not imported by the package.
"""
import math

import numpy as np
from scipy import ndimage
from scipy.special import gamma

GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def rgb2gray(img):
    """MATLAB rgb2gray; uint8 stays integer-valued."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.float64)
    gray = sum(w * img[..., k].astype(np.float64) for k, w in enumerate(GRAY_WEIGHTS))
    return np.round(gray) if img.dtype == np.uint8 else gray


def fspecial_gaussian(size=7, sigma=7 / 6):
    half = (size - 1) / 2
    window = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            window[i, j] = math.exp(-((i - half)**2 + (j - half)**2) / (2 * sigma * sigma))
    return window / window.sum()


def imresize_half(img):
    """MATLAB imresize(img, 0.5): bicubic, antialiased, symmetric border; rows then columns."""

    def cubic(x):
        x = abs(x)
        if x <= 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x <= 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    def resize_axis0(a):
        n_in = a.shape[0]
        n_out = int(math.ceil(n_in * 0.5))
        out = np.zeros((n_out, ) + a.shape[1:])
        for o in range(1, n_out + 1):
            u = o / 0.5 + 0.5 * (1 - 1 / 0.5)
            left = math.floor(u - 4)
            taps = [left + k for k in range(10)]
            weights = np.array([0.5 * cubic(0.5 * (u - t)) for t in taps])
            weights /= weights.sum()
            for t, w in zip(taps, weights):
                i = t - 1  # 0-based, then mirror symmetrically
                while i < 0 or i >= n_in:
                    i = -i - 1 if i < 0 else 2 * n_in - i - 1
                out[o - 1] += w * a[i]
        return out

    return resize_axis0(resize_axis0(img).T).T


def mscn(img, padding):
    window = fspecial_gaussian()
    mode = {'zero': 'constant', 'replicate': 'nearest'}[padding]
    mu = ndimage.correlate(img, window, mode=mode, cval=0.0)
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, window, mode=mode, cval=0.0) - mu * mu))
    return (img - mu) / (sigma + 1)


GRID = np.arange(0.2, 10.0005, 0.001)


def estimate_ggd(vec):
    r_gam = gamma(1 / GRID) * gamma(3 / GRID) / gamma(2 / GRID)**2
    sigma_sq = np.mean(vec**2)
    rho = sigma_sq / np.mean(np.abs(vec))**2
    return GRID[np.argmin(np.abs(rho - r_gam))], sigma_sq


def estimate_aggd(vec):
    r_gam = gamma(2 / GRID)**2 / (gamma(1 / GRID) * gamma(3 / GRID))
    left_std = np.sqrt(np.mean(vec[vec < 0]**2))
    right_std = np.sqrt(np.mean(vec[vec > 0]**2))
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(vec))**2 / np.mean(vec**2)
    r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1)**2
    alpha = GRID[np.argmin((r_gam - r_hat_norm)**2)]
    return alpha, left_std, right_std


def brisque_features(img):
    img = rgb2gray(img)
    feat = []
    for _ in range(2):
        structdis = mscn(img, 'zero')
        alpha, var = estimate_ggd(structdis.ravel())
        feat += [alpha, var]
        for shift in [(0, 1), (1, 0), (1, 1), (-1, 1)]:
            pair = (structdis * np.roll(structdis, shift, axis=(0, 1))).ravel()
            nu, left_std, right_std = estimate_aggd(pair)
            const = math.sqrt(gamma(1 / nu)) / math.sqrt(gamma(3 / nu))
            eta = (right_std - left_std) * (gamma(2 / nu) / gamma(1 / nu)) * const
            feat += [nu, eta, left_std**2, right_std**2]
        img = imresize_half(img)
    return np.array(feat)


def _edge_impaired(block, window=6, threshold=0.1):
    n = block.shape[0]
    edges = [block[0, :], block[:, n - 1], block[n - 1, :], block[:, 0]]
    for edge in edges:
        for start in range(n - window + 1):
            if np.std(edge[start:start + window], ddof=1) < threshold:
                return True
    return False


def _centre_surround(block):
    n = block.shape[0]
    c1 = n // 2 - 1  # MATLAB's column (n-1+1)/2, 1-based
    centre = np.concatenate([block[:, c1], block[:, c1 + 1]])
    surround = np.delete(block, c1, axis=1)
    surround = np.delete(surround, c1 + 1, axis=1)  # MATLAB deletes from the already shrunk block
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = np.std(centre, ddof=1) / np.std(surround, ddof=1)
    return 0.0 if np.isnan(ratio) else ratio


def piqe(img, n=16):
    img = rgb2gray(img)
    rows, cols = img.shape
    img = np.pad(img, ((0, (n - rows % n) % n), (0, (n - cols % n) % n)), mode='symmetric')
    if img.max() > 0:
        img = np.round(255 * (img / img.max()))
    imnorm = mscn(img, 'replicate')
    masks = [np.zeros(imnorm.shape, bool) for _ in range(3)]
    dist, active = 0.0, 0
    for i in range(0, imnorm.shape[0], n):
        for j in range(0, imnorm.shape[1], n):
            block = imnorm[i:i + n, j:j + n]
            var = np.var(block, ddof=1)
            if var <= 0.1:
                continue
            active += 1
            masks[0][i:i + n, j:j + n] = True
            impaired = _edge_impaired(block)
            sigma = math.sqrt(var)
            ratio = _centre_surround(block)
            with np.errstate(invalid='ignore'):
                beta = abs(sigma - ratio) / max(sigma, ratio)
            noisy = sigma > 2 * beta
            masks[1][i:i + n, j:j + n] = impaired
            masks[2][i:i + n, j:j + n] = noisy
            dist += impaired * (1 - var) + noisy * var
    score = 100 * (dist + 1) / (active + 1)
    return (score, ) + tuple(m[:rows, :cols] for m in masks)
