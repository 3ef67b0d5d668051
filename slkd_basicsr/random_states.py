"""The process's random states (python, numpy, torch and, on a GPU, CUDA) in types ``weights_only=True`` loads.

Saved with each training state and restored on resume (:mod:`slkd_basicsr.pipeline.resume`), and kept around the
checks that build datasets and run metrics before training starts (:func:`slkd_basicsr.checks.run.check_run`).
"""
import random
from typing import Any, Dict

import numpy as np
import torch


def _cuda_rng_in_use() -> bool:
    """Whether this process has a CUDA generator to save: CUDA is there and initialised (a run on a GPU)."""
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def rng_state() -> Dict[str, Any]:
    """python, numpy and torch random states, in types that ``weights_only=True`` loads; on a GPU also the CUDA
    generator of the process's current device (``cuda``: dropout and drop-path draw from it)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {'python': random.getstate(), 'numpy': [name, keys.tolist(), pos, has_gauss, cached],
             'torch': torch.get_rng_state()}
    if _cuda_rng_in_use():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def _byte_tensor(state: Any) -> torch.Tensor:
    """A generator state as torch's setters take it (a CPU uint8 tensor), whatever device or type it came in."""
    return torch.as_tensor(state).to(device='cpu', dtype=torch.uint8)


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`. A ``cuda`` entry is restored into the current device's generator when CUDA is
    available (a GPU run resumed on the CPU has no use for it)."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_byte_tensor(state['torch']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(_byte_tensor(state['cuda']))
