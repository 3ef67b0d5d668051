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
from os import path as osp
from typing import Any, Dict, Optional, Sequence

import torch

from slkd_basicsr.complexity import interleaved_times  # noqa: F401  (the one timing helper, re-exported)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(ROOT, 'bench', 'results')


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
