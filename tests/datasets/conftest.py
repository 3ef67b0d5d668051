import cv2
import numpy as np
import pytest


@pytest.fixture
def write_images():
    """Factory: write small random colour PNGs ``names`` into ``folder`` (created) and return the folder."""

    def write(folder, names, shape=(32, 40), seed=0):
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for name in names:
            cv2.imwrite(str(folder / name), rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
        return folder

    return write
