"""Clean images bundled with scikit-image, for demos and tests without any dataset on disk.

These photos ship inside the ``scikit-image`` wheel (no download). Colour photos: astronaut (512x512),
chelsea (300x451), coffee (400x600), rocket (427x640). Greyscale photos, repeated on three channels:
camera (512x512), coins (303x384), moon (512x512), brick, grass, gravel (512x512 textures).
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

SKIMAGE_COLOUR = ('astronaut', 'chelsea', 'coffee', 'rocket')
SKIMAGE_GREY = ('camera', 'coins', 'moon', 'brick', 'grass', 'gravel')
SKIMAGE_IMAGES = SKIMAGE_COLOUR + SKIMAGE_GREY


def load_skimage_images(names: Optional[Sequence[str]] = None, scale: float = 1.0) -> List[Tuple[str, np.ndarray]]:
    """Load scikit-image's bundled photos as BasicSR loads files.

    Args:
        names: Which photos (default: all of :data:`SKIMAGE_IMAGES`, in that order).
        scale: Resize factor (> 0), e.g. 0.25 for quick tests; area interpolation when shrinking.

    Returns:
        ``(name, image)`` pairs; each image H x W x 3, BGR, float32 in [0, 1].

    Raises:
        ValueError: an unknown name or a scale <= 0.
    """
    from skimage import data as skdata

    names = list(SKIMAGE_IMAGES if names is None else names)
    unknown = sorted(set(names) - set(SKIMAGE_IMAGES))
    if unknown:
        raise ValueError(f'skimage_images: unknown image(s) {unknown}; choose from {list(SKIMAGE_IMAGES)}.')
    if scale <= 0:
        raise ValueError(f'skimage_scale must be > 0, got {scale}.')
    images = []
    for name in names:
        img = getattr(skdata, name)()
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if scale != 1:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=interpolation)
        images.append((name, img.astype(np.float32) / 255.))
    return images
