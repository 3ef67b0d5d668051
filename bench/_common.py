"""What every benchmark shares: interleaved timing, the machine record, where results go.

Every script runs the same way, from a clone with the package installed (``pip install -e .``)::

    python bench/<script>.py [--out DIR] ...

Nothing here or in the scripts adds the clone to ``sys.path``: ``slkd_basicsr`` is the one Python imports
(the installed package, or a checkout named by ``PYTHONPATH``), and the training subprocesses of
``bench/study.py`` inherit the same environment, so they import that same package. This module is found
because Python puts a script's own folder (``bench/``) first on ``sys.path``.

Scripts that set OpenMP variables (``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY``) do so before importing this
module, which imports torch.
"""
import os
import platform
import time
from os import path as osp
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(ROOT, 'bench', 'results')


def interleaved_times(steps: Dict[Hashable, Callable[[], Any]], repeats: int,
                      device: Optional[torch.device] = None) -> Dict[Hashable, List[float]]:
    """Wall time in seconds of each of ``repeats`` calls of every step, after one warm-up round.

    The steps take turns (a, b, c, a, b, c, ...), so all of them see the same background load and their ratios
    are steadier than those of separate runs on a shared machine. On a CUDA ``device`` the clock waits for the
    GPU before and after each call.
    """
    def synchronise() -> None:
        if device is not None and device.type == 'cuda':
            torch.cuda.synchronize(device)

    times: Dict[Hashable, List[float]] = {name: [] for name in steps}
    for round_index in range(repeats + 1):
        for name, step in steps.items():
            synchronise()
            start = time.perf_counter()
            step()
            synchronise()
            if round_index:  # the first round warms up: first-call allocations and kernel selection
                times[name].append(time.perf_counter() - start)
    return times


def machine_record(load_before: Sequence[float], device: Optional[torch.device] = None) -> Dict[str, Any]:
    """What a timing depends on besides the code, for a result's ``machine`` entry.

    ``load_before`` is ``os.getloadavg()`` taken when the measurements started; the load now is recorded beside it.
    """
    return {
        'cpu': platform.processor() or platform.machine(),
        'cpu_count': os.cpu_count(),
        'device': torch.cuda.get_device_name(device) if device is not None and device.type == 'cuda' else 'cpu',
        'torch_threads': torch.get_num_threads(),
        'load_average_before_after': [list(load_before), list(os.getloadavg())],
        'torch': torch.__version__,
        **{name: os.environ.get(name) for name in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY')},
    }
