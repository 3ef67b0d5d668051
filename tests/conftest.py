"""Fixtures shared by the tests."""
import logging
from os import path as osp
from typing import Dict

import cv2
import numpy as np
import pytest
import torch

from helpers import make_pairs
from slkd_basicsr.tools.process import prepare_basicsr

# as the entry points do; before any test module imports basicsr, which needs the package's torchvision alias
prepare_basicsr()


@pytest.fixture(scope='session')
def image_pairs(tmp_path_factory) -> Dict[str, Dict[str, str]]:
    """Generated train (8 pairs, 48 px) and validation (2 pairs, 40 px) folders."""
    root = str(tmp_path_factory.mktemp('pairs'))
    return {
        'train': make_pairs(osp.join(root, 'train'), 8, 48, seed=0),
        'val': make_pairs(osp.join(root, 'val'), 2, 40, seed=1),
    }


@pytest.fixture(scope='session')
def teachers(tmp_path_factory) -> Dict[str, str]:
    """Checkpoints of a tiny Teacher A (global residual) and Teacher B (none), in BasicSR's {'params': ...}."""
    from basicsr.archs import build_network

    from helpers import save_checkpoint, tiny_teacher

    root = tmp_path_factory.mktemp('teachers')
    torch.manual_seed(0)
    return {
        'a': save_checkpoint(build_network(tiny_teacher(True)), str(root / 'teacher_a.pth')),
        'b': save_checkpoint(build_network(tiny_teacher(False)), str(root / 'teacher_b.pth')),
    }


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


@pytest.fixture
def basicsr_log():
    """The messages BasicSR's logger (which does not propagate to pytest's) records during the test."""
    from basicsr.utils import get_root_logger

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = get_root_logger()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(level)
