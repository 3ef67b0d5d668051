"""PIQE (Venkatanath et al. 2015) on images, as MATLAB's ``piqe``: score and masks, and the registered metric.

The block maps are :func:`slkd_basicsr.nss.piqe.piqe_block_maps` with hard thresholds on 16 x 16 blocks;
``PIQEFeatureLoss`` uses the same function with smooth thresholds on small blocks.
"""
from typing import Tuple

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY

from slkd_basicsr.nss.filters import mscn
from slkd_basicsr.nss.piqe import IMAGE_BLOCK_SIZE, piqe_block_maps
from .image_util import image_to_gray, metric_image


def piqe(img: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """PIQE score and block masks of an image, as MATLAB's ``piqe``.

    The image is made gray (rgb2gray), padded symmetrically at the bottom/right to a multiple of 16, rescaled
    so that its maximum is 255 and rounded; MSCN uses a replicate border and c = 1.

    Args:
        img: H x W or H x W x 3 (RGB), uint8 or float in [0, 255], at least 8x8; a float image
            with every value in [0, 1] is refused (multiply it by 255).

    Returns:
        score in [0, 100] (0 best; 100 for a uniform image), and the H x W boolean masks of active blocks,
        blocks with noticeable artifacts and noisy blocks.
    """
    gray = image_to_gray(img, 'piqe')[0, 0].numpy()
    height, width = gray.shape
    gray = np.pad(gray, ((0, -height % IMAGE_BLOCK_SIZE), (0, -width % IMAGE_BLOCK_SIZE)), mode='symmetric')
    peak = gray.max()
    if peak > 0:  # an all-black image stays black instead of dividing by zero
        gray = np.round(255 * (gray / peak))
    m = mscn(torch.from_numpy(gray)[None, None], 1.0, 'replicate')
    activity, impairment, noise, distortion = piqe_block_maps(m)[0, 0]
    score = 100 * (float(distortion.sum()) + 1) / (float(activity.sum()) + 1)
    masks = [
        block.bool().repeat_interleave(IMAGE_BLOCK_SIZE, 0).repeat_interleave(IMAGE_BLOCK_SIZE, 1)
        [:height, :width].numpy() for block in (activity, impairment, noise)
    ]
    return score, masks[0], masks[1], masks[2]


@METRIC_REGISTRY.register()
def calculate_piqe(img: np.ndarray,
                   crop_border: int,
                   input_order: str = 'HWC',
                   convert_to: str = 'gray',
                   **kwargs) -> float:
    """PIQE score (0 best .. 100 worst), used like BasicSR's ``calculate_niqe`` under ``val.metrics``.

    Args:
        img: BGR image in [0, 255] (uint8 or float) from ``tensor2img``, layout ``input_order``.
        crop_border: pixels removed on each side.
        input_order: 'HW', 'HWC' or 'CHW'.
        convert_to: 'gray' (MATLAB rgb2gray, as the reference) or 'y'.
    """
    return piqe(metric_image(img, crop_border, input_order, convert_to))[0]
