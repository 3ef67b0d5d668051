"""BasicSR 1.4.2's training states found in the experiment, read onto the CPU safely and written atomically.

BasicSR 1.4.2's ``basicsr.train.load_resume_state`` looks for ``--auto_resume`` states in
``experiments/<name>/training_states`` relative to the working directory, and reads the state with torch's pickle
default onto ``storage.cuda(torch.cuda.current_device())``: without CUDA a resume fails, and with it the random
states come back as CUDA tensors, which ``torch.set_rng_state`` refuses. ``BaseModel.save_training_state`` writes
straight into the final path, so a run killed while saving leaves a truncated ``<iter>.state``, which the next
``--auto_resume`` then fails on.

:func:`install` replaces:

- ``basicsr.train.load_resume_state`` by :func:`load_resume_state`: the newest readable state in the
  experiment's ``training_states/`` (temporary files ignored; an unreadable one, e.g. truncated, is skipped with a
  warning naming it) or ``path.resume_state``, read onto the CPU by
  :func:`~slkd_basicsr.compat.checkpoints.safe_load` (``weights_only=True``; the optimisers move their state to
  their parameters' device when they load it), then BasicSR's ``check_resume``;
- ``BaseModel.save_training_state`` by :func:`save_training_state`: BasicSR's entries and those the model adds
  through its ``extra_training_state()`` (``SLKDModel``: its SCM weights, channel generators and gradient scaler),
  written by rank 0 through :func:`~slkd_basicsr.compat.checkpoints.atomic_torch_save`.

The plugin's own resume (random states, the mid-epoch restart, the options file's learning rates, the frozen
teachers) is :mod:`slkd_basicsr.pipeline.resume`, built from :func:`find_resume_state` and
:func:`write_training_state`.
"""
import os
import sys
from os import path as osp
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import CheckpointError
from .checkpoints import atomic_torch_save, first_line, safe_load


def training_states(state_dir: str) -> List[str]:
    """Paths of the ``<iter>.state`` files in ``state_dir``, newest first (temporary files ignored)."""
    if not osp.isdir(state_dir):
        return []
    iters = [int(name[:-len('.state')]) for name in os.listdir(state_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    return [osp.join(state_dir, f'{it}.state') for it in sorted(iters, reverse=True)]


def read_training_state(path: str) -> Dict[str, Any]:
    """A training state, loaded onto the CPU whatever device the run uses.

    Random states must be CPU tensors to be restored, and ``Optimizer.load_state_dict`` moves the optimiser state
    to its parameters' device itself, so nothing needs the GPU copy (and a state saved on one GPU loads on any).

    Raises:
        CheckpointError: The file cannot be read safely or is no training state.
    """
    state = safe_load(path, map_location='cpu', what='training state')
    missing = [key for key in ('epoch', 'iter', 'optimizers', 'schedulers')
               if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f'{path!r} is no training state: it lacks {", ".join(missing)} (it holds a '
                              f'{type(state).__name__}).')
    return state


def newest_readable_state(opt: Dict[str, Any]) -> Tuple[Optional[str], Optional[Dict[str, Any]], List[str]]:
    """For ``--auto_resume``: the newest training state that reads, the state, and a warning per one skipped.

    Raises:
        CheckpointError: There are states, but none reads.
    """
    notes = []
    paths = training_states(opt['path']['training_states'])
    for path in paths:
        try:
            return path, read_training_state(path), notes
        except CheckpointError as err:
            notes.append(f'Resume: skipping the unreadable training state {path!r} ({first_line(err)}); '
                         'trying the previous one.')
            if opt.get('rank', 0) == 0:  # the logger does not exist yet; BasicSR prints here too
                print(notes[-1], file=sys.stderr, flush=True)
    if paths:
        raise CheckpointError(f'--auto_resume: none of the {len(paths)} training states in '
                              f'{opt["path"]["training_states"]!r} can be read:\n' + '\n'.join(notes) +
                              '\nRemove them to start afresh, or set path.resume_state to a good copy.')
    return None, None, notes


def find_resume_state(opt: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """The state a run resumes from, read (None: a fresh start), and a warning per unreadable state skipped.

    With ``--auto_resume`` the newest readable state in the experiment is taken (:func:`newest_readable_state`);
    otherwise ``path.resume_state``, which must read. ``path.resume_state`` is set to the state taken.
    """
    notes = []
    if opt['auto_resume']:
        resume_state_path, resume_state, notes = newest_readable_state(opt)
    else:
        resume_state_path = opt['path'].get('resume_state')
        resume_state = None if resume_state_path is None else read_training_state(resume_state_path)
    if resume_state is not None:
        opt['path']['resume_state'] = resume_state_path
    return resume_state, notes


def load_resume_state(opt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``basicsr.train.load_resume_state``: :func:`find_resume_state`, then BasicSR's ``check_resume`` (the
    networks are reloaded from the experiment's ``models/`` at the state's iteration)."""
    from basicsr.utils import check_resume

    resume_state, _ = find_resume_state(opt)
    if resume_state is not None:
        check_resume(opt, resume_state['iter'])
    return resume_state


def model_entries(model: Any) -> Dict[str, Any]:
    """What the model adds to its training states through its ``extra_training_state()`` (called on every rank: it
    may gather), or nothing."""
    extra_training_state = getattr(model, 'extra_training_state', None)
    return extra_training_state() if extra_training_state is not None else {}


def write_training_state(model: Any, epoch: int, current_iter: int, entries: Dict[str, Any]) -> None:
    """Write ``<iter>.state`` (BasicSR's ``epoch``, ``iter``, ``optimizers``, ``schedulers``, then ``entries``)
    into the experiment's ``training_states/`` through :func:`atomic_torch_save`."""
    state = {
        'epoch': epoch,
        'iter': current_iter,
        'optimizers': [o.state_dict() for o in model.optimizers],
        'schedulers': [s.state_dict() for s in model.schedulers],
        **entries,
    }
    atomic_torch_save(state, osp.join(model.opt['path']['training_states'], f'{current_iter}.state'))


def training_state_saver(entries: Callable[[Any], Dict[str, Any]]) -> Callable[[Any, int, int], None]:
    """A ``BaseModel.save_training_state`` that writes BasicSR's entries and ``entries(model)``
    (:func:`write_training_state`) by rank 0.

    BasicSR calls it on every rank, so ``entries`` runs on every rank (it may gather); BasicSR's final save
    (``current_iter`` -1) writes no training state, on every rank alike.
    """

    def save_training_state(self, epoch: int, current_iter: int) -> None:
        if current_iter == -1:
            return
        extra = entries(self)
        if self.opt.get('rank', 0) == 0:
            write_training_state(self, epoch, current_iter, extra)

    return save_training_state


# ``BaseModel.save_training_state``: with the model's :func:`model_entries`, written atomically by rank 0
save_training_state = training_state_saver(model_entries)


def install() -> None:
    """Replace ``basicsr.train.load_resume_state`` and ``BaseModel.save_training_state``."""
    import basicsr.train
    from basicsr.models.base_model import BaseModel

    basicsr.train.load_resume_state = load_resume_state
    BaseModel.save_training_state = save_training_state
