"""Distributed and single-process runs on machines with or without CUDA.

BasicSR 1.4.2's ``init_dist`` defaults to NCCL and calls ``torch.cuda.set_device`` (from ``RANK``, not
``LOCAL_RANK``), ``BaseModel.model_to_device`` gives DDP a CUDA ``device_ids``, and ``num_gpu: 1`` on a machine
without CUDA fails on the first ``.cuda()``. :func:`install` replaces ``init_dist`` (gloo without CUDA, NCCL
with it, each process bound to its ``LOCAL_RANK`` GPU) and ``model_to_device`` (CPU models wrapped in DDP without
``device_ids``), and wraps the train and test ``parse_options`` so that ``num_gpu`` > 0 without CUDA means the
CPU, with a message.
"""
import os
from typing import Callable, Optional

import torch


def init_dist(launcher: str, backend: Optional[str] = None, **kwargs) -> None:
    """``basicsr.utils.dist_util.init_dist``: gloo without CUDA, NCCL with it."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if launcher == 'pytorch':
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
        dist.init_process_group(backend=backend, **kwargs)
    elif launcher == 'slurm':
        from basicsr.utils import dist_util
        dist_util._init_dist_slurm(backend, **kwargs)
    else:
        raise ValueError(f'Invalid launcher type: {launcher}')


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


def _cpu_fallback(parse_options: Callable) -> Callable:
    """Wrap ``parse_options`` so that ``num_gpu`` > 0 without CUDA means the CPU."""

    def wrapped(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train)
        if opt.get('num_gpu', 0) != 0 and not torch.cuda.is_available():
            print(f"num_gpu is {opt['num_gpu']} but CUDA is not available: running on the CPU.", flush=True)
            opt['num_gpu'] = 0
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


def install() -> None:
    """Replace ``init_dist`` (where ``parse_options`` calls it) and ``model_to_device``; wrap ``parse_options``."""
    import basicsr.test
    import basicsr.train
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util, options

    dist_util.init_dist = init_dist
    options.init_dist = init_dist
    BaseModel.model_to_device = model_to_device
    basicsr.train.parse_options = _cpu_fallback(basicsr.train.parse_options)
    basicsr.test.parse_options = _cpu_fallback(basicsr.test.parse_options)
