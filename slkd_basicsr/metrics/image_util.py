"""Input checks and grayscale conversion shared by the image-mode (metric) extractors."""
import numpy as np
import torch
from basicsr.metrics.metric_util import reorder_image, to_y_channel

# MATLAB rgb2gray: first row of the inverse NTSC (YIQ) transform, 0.2989 / 0.5870 / 0.1140 to four digits.
RGB_TO_GRAY = np.linalg.inv(np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]]))[0]


def image_to_gray(img: np.ndarray, name: str) -> torch.Tensor:
    """Validate an image and return its MATLAB-style grayscale as a 1 x 1 x H x W float64 tensor in [0, 255].

    Args:
        img: H x W or H x W x 3 (RGB), uint8 or float in [0, 255]. A float image whose values all lie in (0, 1]
            (a [0, 1] image) is refused rather than read as an almost black [0, 255] one.
        name: the function name used in error messages.
    """
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        shape = getattr(img, 'shape', type(img).__name__)
        raise ValueError(f'{name}: expected a numpy array H x W or H x W x 3 (RGB), got {shape}')
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f'{name}: expected uint8 or float in [0, 255], got dtype {img.dtype}')
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f'{name}: image of {img.shape[0]}x{img.shape[1]} is too small (at least 8x8)')
    gray = img.astype(np.float64)
    if not np.isfinite(gray).all() or gray.min() < 0 or gray.max() > 255:
        raise ValueError(f'{name}: values must be finite and in [0, 255] (scale [0, 1] images by 255)')
    if img.dtype != np.uint8 and 0 < gray.max() <= 1:
        # BasicSR's metrics get [0, 255] images from tensor2img; a [0, 1] float gives other NSS features, silently
        raise ValueError(f'{name}: a float image with all values in [0, 1] (max {gray.max():g}) looks like a [0, 1] '
                         'image, but [0, 255] is expected: multiply it by 255 (or pass uint8, as tensor2img gives)')
    if gray.ndim == 3:
        gray = gray @ RGB_TO_GRAY
        if img.dtype == np.uint8:
            gray = np.clip(np.round(gray), 0, 255)  # rgb2gray keeps the uint8 class
    return torch.from_numpy(np.ascontiguousarray(gray))[None, None]


def metric_image(img: np.ndarray, crop_border: int, input_order: str, convert_to: str) -> np.ndarray:
    """Turn BasicSR's metric input (BGR, [0, 255], from ``tensor2img``) into what the extractors take.

    Args:
        img: H x W, H x W x C or C x H x W (``input_order``), BGR when it has 3 channels.
        crop_border: pixels removed on each side before the metric.
        convert_to: 'gray' (MATLAB rgb2gray, the reference for BRISQUE and PIQE) or 'y' (Y of YCbCr).

    Returns:
        H x W (gray input or 'y') or H x W x 3 RGB, with the dtype of ``img`` kept for 'gray'.
    """
    if convert_to not in ('gray', 'y'):
        raise ValueError(f"convert_to must be 'gray' or 'y', got {convert_to!r}")
    img = reorder_image(img, input_order=input_order)
    if img.shape[2] == 1:
        img = img[..., 0]
    elif convert_to == 'y':
        img = to_y_channel(img)[..., 0]
    else:
        img = img[..., ::-1]
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return np.ascontiguousarray(img)
