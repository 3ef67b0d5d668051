"""Small real photos and degraded versions shared by the metric tests."""
import cv2
import numpy as np
import pytest
from skimage import data


def _crops():
    return {
        'astronaut': data.astronaut()[40:136, 180:292],  # RGB uint8, 96 x 112
        'camera': data.camera()[60:140, 200:290],  # gray uint8, 80 x 90 (not a multiple of 16)
        'coffee': data.coffee()[100:164, 200:277],  # RGB uint8, 64 x 77
        'chelsea': data.chelsea()[50:130, 150:230].astype(np.float64),  # RGB float in [0, 255]
    }


def degrade(img: np.ndarray, kind: str) -> np.ndarray:
    """Blur, noise or JPEG versions of an RGB/gray uint8 image (uint8 out)."""
    img = img.astype(np.uint8)
    if kind == 'blur':
        return cv2.GaussianBlur(img, (0, 0), 2.0)
    if kind == 'noise':
        noise = np.random.default_rng(0).normal(0, 20, img.shape)
        return np.clip(img + noise, 0, 255).astype(np.uint8)
    if kind == 'jpeg':
        return cv2.imdecode(cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 10])[1], cv2.IMREAD_UNCHANGED)
    return img


@pytest.fixture(scope='session')
def photos():
    """Name -> image, clean crops and their blurred / noisy / JPEG versions."""
    images = {}
    for name, img in _crops().items():
        images[name] = img
        for kind in ('blur', 'noise', 'jpeg'):
            images[f'{name}-{kind}'] = degrade(img, kind)
    return images
