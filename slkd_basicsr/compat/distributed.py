"""BasicSR 1.4.2's distributed runs on machines with or without CUDA.

BasicSR 1.4.2's ``init_dist`` defaults to NCCL, calls ``torch.cuda.set_device`` (from ``RANK``, not
``LOCAL_RANK``) and gives the process group torch's default timeout (``parse_options`` passes ``dist_params``
to the slurm launcher only, and BasicSR's slurm start takes no timeout); ``BaseModel.model_to_device`` gives DDP
a CUDA ``device_ids``. So ``--launcher pytorch`` needs CUDA and NCCL.

:func:`install` replaces ``init_dist`` (gloo without CUDA, NCCL with it, each process bound to its
``LOCAL_RANK`` GPU, ``dist_params.timeout_minutes`` of the options file as the timeout of every collective) and
``model_to_device`` (CPU models wrapped in DDP without ``device_ids``). What ``num_gpu`` may be on this machine is
the plugin's check, :mod:`slkd_basicsr.pipeline.gpus`.
"""
import datetime
import os
import subprocess
from typing import Any, Optional

import torch

from ..checks.options import OptionsError, dist_params_problems, options_file_path, read_options_file


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


def install() -> None:
    """Replace ``init_dist`` (the one ``parse_options`` calls reads ``dist_params`` from the options file) and
    ``model_to_device``."""
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util, options

    dist_util.init_dist = init_dist
    options.init_dist = init_dist_of_options_file
    BaseModel.model_to_device = model_to_device
