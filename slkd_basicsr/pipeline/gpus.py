"""``num_gpu`` settled against this machine and the launcher before anything is made.

BasicSR 1.4.2 fails on the first ``.cuda()`` with ``num_gpu: 1`` on a machine without CUDA; with ``num_gpu`` > 1
on a machine with fewer CUDA devices it runs on the CPU, exit status 0; and ``num_gpu`` > 1 without a launcher
wraps the networks in ``DataParallel``, whose replicas break SLKD's feature taps (their forward hooks fire in every
replica). :func:`settle_num_gpu` runs in the train and test ``parse_options`` (:mod:`.parse`), first of its steps.
"""
from typing import Any, Dict, Optional

import torch

from ..checks.options import OptionsError


def cuda_device_count() -> int:
    """The CUDA devices this process can use (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def num_gpu_problem(num_gpu: int, devices: int, is_train: bool, distributed: bool, source: str) -> Optional[str]:
    """Why ``num_gpu`` (> 1) cannot run here, in one line, or None when it can."""
    if num_gpu > devices:
        have = 'no CUDA device' if devices == 0 else f"only {devices} CUDA device{'s' if devices > 1 else ''}"
        fix = 'num_gpu: 0 to run on the CPU' if devices == 0 else f'num_gpu to at most {devices}'
        return f'{source}: num_gpu is {num_gpu} but this machine has {have}: set {fix}.'
    if is_train and not distributed:
        return (f'{source}: num_gpu is {num_gpu} without a launcher: BasicSR would wrap the networks in DataParallel, '
                "whose replicas break SLKD's feature taps (their forward hooks fire in every replica). Start one "
                f'process per GPU instead: torchrun --nproc_per_node={num_gpu} -m slkd_basicsr.tools.train '
                f'-opt {source} --launcher pytorch (or set num_gpu: 1).')
    return None


def settle_num_gpu(opt: Dict[str, Any], is_train: bool, source: str) -> None:
    """Check ``num_gpu`` of parsed options (``parse_options`` has made ``auto`` the CUDA device count) against
    this machine and the launcher; ``num_gpu: 1`` without CUDA becomes 0, the CPU, with a one-line notice.

    ``slkd-test`` may use DataParallel (``num_gpu`` > 1 without a launcher): it has no feature taps.

    Raises:
        OptionsError: ``num_gpu`` > 1 with fewer CUDA devices, or, for training, without a launcher.
    """
    num_gpu = opt.get('num_gpu', 0)
    if isinstance(num_gpu, bool) or not isinstance(num_gpu, int):
        return  # not a count: the options check reports it
    devices = cuda_device_count()
    problem = num_gpu_problem(num_gpu, devices, is_train, opt.get('dist', False), source) if num_gpu > 1 else None
    if problem:
        raise OptionsError(problem)
    if num_gpu == 1 and devices == 0:
        print('num_gpu is 1 but CUDA is not available: running on the CPU.', flush=True)
        opt['num_gpu'] = 0
