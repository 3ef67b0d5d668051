"""BRISQUE extractor (Mittal, Moorthy, Bovik 2012): image-mode features, the metric, and the shared statistics.

:func:`brisque_statistics` is the one implementation; the metric calls it in image mode (hard grid search,
zero padding, c = 1) and ``BRISQUEFeatureLoss`` in feature mode (differentiable, configurable c, padding
and shape parameterisation).
"""
from functools import lru_cache
from typing import Optional

import numpy as np
import torch

from basicsr.utils.registry import METRIC_REGISTRY
from .brisque_svr import BrisqueRegressor, load_brisque_regressor
from .image_util import image_to_gray, metric_image
from .nss_util import compute_dtype, fit_ggd, fit_neighbour_aggd, half_resize, mscn


def brisque_statistics(x: torch.Tensor,
                       c: float | torch.Tensor = 1.0,
                       padding: str = 'zero',
                       shape: str = 'grid',
                       eps: float = 0.0,
                       num_scales: int = 2) -> torch.Tensor:
    """BRISQUE statistics of every channel of ``x``.

    Per scale: [alpha, sigma^2] of the GGD fit of the MSCN map, then for the neighbour products with shifts
    (0,1), (1,0), (1,1), (-1,1): [nu, eta, sigma_l^2, sigma_r^2] of the AGGD fit. Each further scale is the
    previous one resized by MATLAB's bicubic 0.5x with antialiasing.

    Args:
        x: B x C x H x W (images: luminance in [0, 255]).
        c, padding, eps: MSCN options, see :func:`nss_util.mscn`.
        shape: 'grid' (reference), 'interp' (differentiable shapes) or 'ratio' (moment ratios in the shape
            slots), see :data:`nss_util.SHAPE_METHODS`.
        num_scales: number of scales.

    Returns:
        B x C x (18 * num_scales), in the compute dtype of ``x``.
    """
    x = x.to(compute_dtype(x))
    stats = []
    for scale in range(num_scales):
        if scale:
            x = half_resize(x)
        m = mscn(x, c, padding, eps=eps)
        ggd_shape, variance = fit_ggd(m.flatten(-2), shape, eps)
        pairs = fit_neighbour_aggd(m, shape, eps)
        stats.append(torch.cat([ggd_shape[..., None], variance[..., None], pairs.flatten(-2)], dim=-1))
    return torch.cat(stats, dim=-1)


def brisque_features(img: np.ndarray) -> np.ndarray:
    """The 36 reference BRISQUE features of an image.

    Args:
        img: H x W or H x W x 3 (RGB, made gray as MATLAB's rgb2gray), uint8 or float in [0, 255], at least 8x8.

    Returns:
        float64 array (36,): per scale [alpha, sigma^2, then per shift (0,1), (1,0), (1,1), (-1,1):
        nu, eta, sigma_l^2, sigma_r^2].
    """
    return brisque_statistics(image_to_gray(img, 'brisque_features'))[0, 0].numpy()


@lru_cache(maxsize=4)
def _cached_regressor(svm_model_path: Optional[str], feature_range_path: Optional[str]) -> BrisqueRegressor:
    return load_brisque_regressor(svm_model_path, feature_range_path)


@METRIC_REGISTRY.register()
def calculate_brisque(img: np.ndarray,
                      crop_border: int,
                      input_order: str = 'HWC',
                      convert_to: str = 'gray',
                      svm_model_path: Optional[str] = None,
                      feature_range_path: Optional[str] = None,
                      **kwargs) -> float:
    """BRISQUE quality score (lower is better, about 0..100) with the published LIVE-trained SVR.

    Used like BasicSR's ``calculate_niqe`` under ``val.metrics`` (``img2`` is ignored).

    Args:
        img: BGR image in [0, 255] (uint8 or float) from ``tensor2img``, layout ``input_order``.
        crop_border: pixels removed on each side.
        input_order: 'HW', 'HWC' or 'CHW'.
        convert_to: 'gray' (MATLAB rgb2gray, as the reference) or 'y'.
        svm_model_path, feature_range_path: the libsvm model and its svm-scale range file of the original BRISQUE
            release (``allmodel``, ``allrange``); required, see :mod:`brisque_svr`.
    """
    regressor = _cached_regressor(svm_model_path, feature_range_path)
    return regressor.predict(brisque_features(metric_image(img, crop_border, input_order, convert_to)))
