"""Distributed and single-process runs on machines with or without CUDA.

BasicSR 1.4.2's ``init_dist`` defaults to NCCL, calls ``torch.cuda.set_device`` (from ``RANK``, not
``LOCAL_RANK``) and gives the process group torch's default timeout (``parse_options`` passes ``dist_params``
to the slurm launcher only, and BasicSR's slurm start takes no timeout); ``BaseModel.model_to_device`` gives DDP
a CUDA ``device_ids``; ``num_gpu: 1`` on a machine without CUDA fails on the first ``.cuda()``; ``num_gpu`` > 1
without a launcher wraps the networks in ``DataParallel``, whose replicas break SLKD's feature taps (their
forward hooks fire in every replica), and on a machine with fewer CUDA devices runs on the CPU, exit status 0.

:func:`install` replaces ``init_dist`` (gloo without CUDA, NCCL with it, each process bound to its
``LOCAL_RANK`` GPU, ``dist_params.timeout_minutes`` of the options file as the timeout of every collective) and
``model_to_device`` (CPU models wrapped in DDP without ``device_ids``), and wraps the train and test
``parse_options`` so that ``num_gpu`` is checked against the machine and the launcher (:func:`settle_num_gpu`)
before anything is made.
"""
import datetime
import os
import subprocess
from typing import Any, Callable, Dict, Optional

import torch

from ..checks.options import OptionsError, dist_params_problems, read_options_file
from .run_safety import options_file_path


def init_dist(launcher: str, backend: Optional[str] = None, port: Optional[int] = None,
              timeout_minutes: Optional[float] = None) -> None:
    """``basicsr.utils.dist_util.init_dist``: gloo without CUDA, NCCL with it.

    Args:
        launcher: ``pytorch`` (torchrun sets ``RANK``, ``LOCAL_RANK``, ...) or ``slurm``.
        backend: The process group's backend; None: NCCL with CUDA, gloo without.
        port: For slurm only, as in BasicSR: the master port (else ``MASTER_PORT``, else 29500).
        timeout_minutes: How long a collective may wait for the other ranks before the run fails; None:
            torch's default (10 minutes for NCCL, 30 for gloo in torch 2.x).
    """
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if launcher == 'slurm':
        _slurm_environment(port)
    elif launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    timeout = {} if timeout_minutes is None else {'timeout': datetime.timedelta(minutes=timeout_minutes)}
    dist.init_process_group(backend=backend, **timeout)


def _slurm_environment(port: Optional[int]) -> None:
    """Set the variables torch's ``env://`` start reads from slurm's, as BasicSR's ``_init_dist_slurm`` does
    (``LOCAL_RANK`` from ``SLURM_LOCALID``, the task's index on its node, rather than modulo the GPU count)."""
    proc_id = os.environ['SLURM_PROCID']
    hosts = subprocess.run(['scontrol', 'show', 'hostnames', os.environ['SLURM_NODELIST']], capture_output=True,
                           text=True, check=True).stdout.split()
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['MASTER_ADDR'] = hosts[0]
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', proc_id)
    os.environ['RANK'] = proc_id


def init_dist_of_options_file(launcher: str, **_passed: Any) -> None:
    """``init_dist`` where BasicSR's ``parse_options`` calls it, with the ``dist_params`` of the options file.

    ``parse_options`` calls ``init_dist`` before it returns the options, and passes ``dist_params`` with the
    slurm launcher only (``_passed``); so they are read here from the file named by ``-opt``, which it has just
    read. With ``--launcher pytorch`` only ``timeout_minutes`` is used, as BasicSR ignores ``backend`` and
    ``port`` there (the backend follows CUDA, torchrun sets the port).

    Raises:
        OptionsError: ``dist_params`` has a problem (the check of :mod:`slkd_basicsr.checks.options` runs only
            after ``parse_options``, too late for the process group).
    """
    source = options_file_path()
    params = read_options_file(source).get('dist_params') or {}
    problems = dist_params_problems(params)
    if problems:
        raise OptionsError(f'{source}: ' + ' '.join(problems))
    if launcher == 'pytorch':
        params = {key: value for key, value in params.items() if key == 'timeout_minutes'}
    init_dist(launcher, **params)


def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
    """``BaseModel.model_to_device`` that also wraps CPU models in DDP."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt['dist']:
        find_unused = self.opt.get('find_unused_parameters', False)
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
    if self.opt['num_gpu'] > 1:
        return DataParallel(net)
    return net


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


def _num_gpu_settled(parse_options: Callable) -> Callable:
    """Wrap ``parse_options`` so that ``num_gpu`` is settled (:func:`settle_num_gpu`) before it returns."""

    def wrapped(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train)
        settle_num_gpu(opt, is_train, args.opt)
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


def install() -> None:
    """Replace ``init_dist`` (the one ``parse_options`` calls reads ``dist_params`` from the options file) and
    ``model_to_device``; wrap ``parse_options``."""
    import basicsr.test
    import basicsr.train
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util, options

    dist_util.init_dist = init_dist
    options.init_dist = init_dist_of_options_file
    BaseModel.model_to_device = model_to_device
    basicsr.train.parse_options = _num_gpu_settled(basicsr.train.parse_options)
    basicsr.test.parse_options = _num_gpu_settled(basicsr.test.parse_options)
