"""BRISQUE (Mittal, Moorthy, Bovik 2012) on images: the 36 reference features and the registered metric.

The statistics are :func:`slkd_basicsr.nss.brisque.brisque_statistics` in image mode (hard grid search, zero
padding, c = 1); ``BRISQUEFeatureLoss`` uses the same function in feature mode.
"""
from functools import lru_cache
from typing import Optional

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from slkd_basicsr.nss.brisque import brisque_statistics
from .brisque_svr import BrisqueRegressor, load_brisque_regressor
from .image_util import image_to_gray, metric_image


def brisque_features(img: np.ndarray) -> np.ndarray:
    """The 36 reference BRISQUE features of an image.

    Args:
        img: H x W or H x W x 3 (RGB, made gray as MATLAB's rgb2gray), uint8 or float in [0, 255], at least 8x8;
            a float image with every value in [0, 1] is refused (multiply it by 255).

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
