"""``--auto_resume`` that finds the state, loads it on a CPU, and continues exactly where the killed run stopped.

BasicSR 1.4.2 looks for training states relative to the working directory, loads them onto ``.cuda()`` with the
pickle default, writes them straight into the final path, and restarts the current epoch from its first batch
with fresh random states. :func:`install` replaces:

- ``basicsr.train.load_resume_state``: the newest complete state in the experiment's ``training_states/``,
  mapped to the run's device and read by :func:`~slkd_basicsr.compat.checkpoints.safe_load`; frozen teachers
  (``network_teacher_*``) keep their configured checkpoints, as they are never saved in the experiment;
- ``BaseModel.save_training_state``: :func:`save_training_state` (random states added, atomic, rank 0 only);
- ``basicsr.train.create_train_val_dataloader`` and ``EnlargedSampler.__iter__``: once after resume, the
  sampler skips the samples of the current epoch already consumed and restores the saved random states.

With ``num_worker_per_gpu: 0`` in one process a resumed run is then bit-identical to an uninterrupted one on the
CPU; with loader workers the data order is right but augmentation randomness is drawn afresh.
"""
import os
import random
from dataclasses import dataclass
from os import path as osp
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from .checkpoints import atomic_torch_save, safe_load


def resume_device(opt: Dict[str, Any]) -> torch.device:
    """The device a resume state is mapped to: the process's GPU when the run uses one, else the CPU."""
    if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def latest_training_state(state_dir: str) -> Optional[str]:
    """Path of the newest ``<iter>.state`` in ``state_dir`` (temporary files ignored), or None."""
    if not osp.isdir(state_dir):
        return None
    iters = [int(name[:-len('.state')]) for name in os.listdir(state_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    if not iters:
        return None
    return osp.join(state_dir, f'{max(iters)}.state')


@dataclass
class ResumePosition:
    """Where a resumed run picks up: the saved epoch and iteration, and the random states at that point."""
    epoch: int
    iter: int
    rng: Optional[Dict[str, Any]]

    def __str__(self) -> str:  # BasicSR logs the whole options dict; keep the random states out of it
        return f'epoch {self.epoch}, iter {self.iter}'


def rng_state() -> Dict[str, Any]:
    """python, numpy and torch random states, in types that ``weights_only=True`` loads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {'python': random.getstate(), 'numpy': [name, keys.tolist(), pos, has_gauss, cached],
            'torch': torch.get_rng_state()}


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])


def save_training_state(self, epoch: int, current_iter: int, **extra: Any) -> None:
    """``BaseModel.save_training_state`` with the random states, written atomically by rank 0.

    The state holds BasicSR's entries (``epoch``, ``iter``, ``optimizers``, ``schedulers``), ``rng``
    (:func:`rng_state`) and the ``extra`` entries a model adds (``SLKDModel`` adds its SCM weights).
    """
    if current_iter == -1 or self.opt.get('rank', 0) != 0:
        return
    state = {
        'epoch': epoch,
        'iter': current_iter,
        'optimizers': [o.state_dict() for o in self.optimizers],
        'schedulers': [s.state_dict() for s in self.schedulers],
        'rng': rng_state(),
        **extra,
    }
    atomic_torch_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))


def load_resume_state(opt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``basicsr.train.load_resume_state`` that finds, maps and safely reads the state, and remembers the position."""
    from basicsr.utils import check_resume

    if opt['auto_resume']:
        resume_state_path = latest_training_state(opt['path']['training_states'])
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    else:
        resume_state_path = opt['path'].get('resume_state')
    if resume_state_path is None:
        return None

    resume_state = safe_load(resume_state_path, map_location=resume_device(opt), what='resume state')
    teachers = [key for key in opt if key.startswith('network_teacher')]
    ignored = list(opt['path'].get('ignore_resume_networks') or [])
    opt['path']['ignore_resume_networks'] = ignored + [key for key in teachers if key not in ignored]
    check_resume(opt, resume_state['iter'])
    opt['resume_position'] = ResumePosition(resume_state['epoch'], resume_state['iter'], resume_state.get('rng'))
    return resume_state


def _resumable_loaders(create_train_val_dataloader: Callable) -> Callable:
    """Wrap ``create_train_val_dataloader``: after resume, tell the train sampler what to skip and restore."""

    def wrapped(opt, logger):
        result = create_train_val_dataloader(opt, logger)
        train_loader, train_sampler = result[0], result[1]
        position = opt.get('resume_position')
        if position is not None and position.rng is not None:
            consumed = position.iter - position.epoch * len(train_loader)
            train_sampler.resume = {'skip': consumed * train_loader.batch_size, 'rng': position.rng}
            logger.info(f'Resuming inside epoch {position.epoch}: skipping its first {consumed} batches.')
        return result

    wrapped.__wrapped__ = create_train_val_dataloader
    return wrapped


def _resumable_sampler_iter(sampler_iter: Callable) -> Callable:
    """Wrap ``EnlargedSampler.__iter__``: once after resume, skip consumed samples and restore random states.

    The sampler is iterated when the first batch is fetched, after the DataLoader has drawn its base seed:
    exactly where the uninterrupted run stood when it saved the state.
    """

    def wrapped(self):
        indices = list(sampler_iter(self))
        resume = getattr(self, 'resume', None)
        if resume is not None:
            self.resume = None
            indices = indices[resume['skip']:]
            set_rng_state(resume['rng'])
        return iter(indices)

    wrapped.__wrapped__ = sampler_iter
    return wrapped


def install() -> None:
    """Replace BasicSR's resume state loading and saving and make its train sampler resumable mid-epoch."""
    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models.base_model import BaseModel

    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.create_train_val_dataloader = _resumable_loaders(basicsr.train.create_train_val_dataloader)
    EnlargedSampler.__iter__ = _resumable_sampler_iter(EnlargedSampler.__iter__)
    BaseModel.save_training_state = save_training_state
