"""The plugin's resume: each rank's random states, the mid-epoch restart and the options file's settings.

BasicSR 1.4.2 restarts a resumed run's epoch from its first batch with fresh random states, keeps the state's
learning rates and scheduler settings whatever the options file now says, and fails with torch's ``ValueError:
loaded state dict has a different number of parameter groups`` when the trained parameters changed. Built on the
state finding, reading and writing of :mod:`slkd_basicsr.compat.resume`, :func:`install` replaces:

- ``basicsr.train.load_resume_state`` by :func:`load_resume_state`: the state of
  :func:`~slkd_basicsr.compat.resume.find_resume_state`; frozen teachers (``network_teacher_*``) keep their
  configured checkpoints, as they are never saved in the experiment; BasicSR's ``check_resume``; the position and
  this rank's random states remembered for the data loader (``opt['resume_position']``); the state checked against
  the options (:func:`~slkd_basicsr.checks.run.check_resumable`) before anything is made or written into the
  experiment folder, so that a resume the model would refuse leaves the folder as it was;
- ``BaseModel.save_training_state`` by :func:`save_training_state` (every rank's random states gathered and the
  run's :func:`epoch_shape`, with the model's entries, written atomically by rank 0);
- ``BaseModel.resume_training`` by :func:`resume_training`, which applies the options file's learning rates,
  optimiser and scheduler settings where they differ from the state's, logging each change, and refuses with an
  :class:`~slkd_basicsr.checks.options.OptionsError` a state whose optimisers optimised other parameters (SLKD's
  feature terms added or removed: the SCM's param group comes or goes);

and wraps ``basicsr.train.create_train_val_dataloader`` and ``EnlargedSampler.__iter__``: once after resume, the
sampler skips the samples of the current epoch already consumed and restores this rank's saved random states
(python, numpy, torch and, on a GPU, the CUDA generator of the process's device).

Each rank resumes its own random streams: the state holds one entry per rank (``rng``, a list in rank order). A
state of an older version holds a single set, which every rank restores, as before. A state saved by a different
number of processes cannot place the run inside its epoch: the epoch restarts from its first batch without
restoring random states (as BasicSR does), with a warning; so does a state saved with another batch size or
dataset (each state records the :func:`epoch_shape` of its run; for an older state without one, an iteration that
does not fall inside the saved epoch gives it away), instead of skipping a wrong, even negative, number of batches.

With ``num_worker_per_gpu: 0`` a resumed run is then bit-identical to an uninterrupted one on the CPU, in one
process or several; with loader workers the data order is right but augmentation randomness is drawn afresh.
"""
import collections
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..checks.run import check_resumable, parameter_mismatch, parameters_changed
from ..compat.resume import find_resume_state, model_entries, training_state_saver
from ..dist_util import gather_per_rank
from ..errors import CheckpointError
from ..random_states import rng_state, set_rng_state

# Entries of a scheduler's state that say where it stands, not how it is configured (base_lrs follow the optimiser's
# initial_lr, cumulative_period follows periods).
SCHEDULER_POSITION = {'last_epoch', '_step_count', '_is_initial', '_get_lr_called_within_step', '_last_lr',
                      'base_lrs', 'cumulative_period', 'verbose', '_initial_step'}
# Entries of an optimiser's param group that are not settings of the options file (initial_lr is its lr).
GROUP_POSITION = {'params', 'lr', 'initial_lr'}
# What places an iteration inside an epoch (:func:`epoch_shape`, saved with each training state), in words
EPOCH_SHAPE_WORDS = {'batch_size': 'batch size per process', 'iters_per_epoch': 'iterations per epoch',
                     'dataset_size': 'dataset size', 'samples_per_epoch': 'samples per epoch (all processes)'}


@dataclass
class ResumePosition:
    """Where a resumed run picks up: the saved epoch and iteration, and this rank's random states at that point
    (None: the epoch restarts from its first batch)."""
    epoch: int
    iter: int
    rng: Optional[Dict[str, Any]]
    notes: List[str] = field(default_factory=list)  # warnings from finding the state, for the run's log
    epoch_shape: Optional[Dict[str, int]] = None  # the saving run's epoch_shape (None: a state of an older version)

    def __str__(self) -> str:  # BasicSR logs the whole options dict; keep the random states out of it
        return f'epoch {self.epoch}, iter {self.iter}'


def own_rng_state(saved: Any, rank: int, world_size: int) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """This rank's entry of a state's ``rng``, and a warning when there is none to restore.

    ``saved`` is a list in rank order (:func:`save_training_state`), one dict (a state of an older version, which
    every rank restores, as then), or None (a state without random states).
    """
    if saved is None or isinstance(saved, dict):
        return saved, None
    if len(saved) != world_size:
        return None, (f'Resume: the training state holds the random states of {len(saved)} process(es), this run '
                      f'has {world_size}: the current epoch restarts from its first batch and no random state is '
                      'restored (each rank keeps the one seeded from manual_seed + rank).')
    return saved[rank], None


def resume_entries(model: Any) -> Dict[str, Any]:
    """What the plugin's training states hold beyond BasicSR's entries, computed on every rank (both gather):
    ``rng`` (each rank's :func:`~slkd_basicsr.random_states.rng_state`, in rank order), ``epoch_shape``
    (:func:`epoch_shape` of the run's train loader, which places the iteration inside its epoch on resume) and the
    entries of the model's ``extra_training_state()``, when it has one (``SLKDModel`` adds its SCM weights,
    channel generators and gradient scaler; its ``resume_training`` reads them back)."""
    extra = model_entries(model)
    return {'rng': gather_per_rank(rng_state()), 'epoch_shape': model.opt.get('epoch_shape'), **extra}


# ``BaseModel.save_training_state`` with every rank's random states (:func:`resume_entries`), written atomically by
# rank 0
save_training_state = training_state_saver(resume_entries)


def load_resume_state(opt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``basicsr.train.load_resume_state``: the state :func:`~slkd_basicsr.compat.resume.find_resume_state` finds
    and reads, set up for the resumed run (:func:`resume_from`) and checked against the options
    (:func:`~slkd_basicsr.checks.run.check_resumable`), before anything is written into the experiment folder."""
    resume_state, notes = find_resume_state(opt)
    if resume_state is None:
        return None
    resume_from(opt, resume_state, notes)
    check_resumable(opt, resume_state)
    return resume_state


def resume_from(opt: Dict[str, Any], resume_state: Dict[str, Any], notes: List[str]) -> None:
    """Set up the options for resuming from ``resume_state`` (read from ``opt['path']['resume_state']``).

    Networks are reloaded from the experiment's ``models/`` at the state's iteration, except the frozen teachers;
    ``opt['resume_position']`` tells the data loader where the state stood and this rank's random states.
    """
    from basicsr.utils import check_resume

    teachers = [key for key in opt if key.startswith('network_teacher')]
    ignored = list(opt['path'].get('ignore_resume_networks') or [])
    opt['path']['ignore_resume_networks'] = ignored + [key for key in teachers if key not in ignored]
    check_resume(opt, resume_state['iter'])
    rng, note = own_rng_state(resume_state.get('rng'), opt.get('rank', 0), opt.get('world_size', 1))
    opt['resume_position'] = ResumePosition(resume_state['epoch'], resume_state['iter'], rng,
                                            notes + ([note] if note else []), resume_state.get('epoch_shape'))


def _plain(value: Any) -> Any:
    """A setting in comparable, printable form (Counters as sorted lists, tuples as lists, floats as %g)."""
    if isinstance(value, collections.Counter):
        return sorted(value.elements())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _plain(value.tolist())
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:g}'
    if isinstance(value, list):
        return '[' + ', '.join(_fmt(v) for v in value) + ']'
    return repr(value) if isinstance(value, str) else str(value)


def optimizer_keys(model: Any) -> List[str]:
    """The options key of each optimiser: ``train.optim_<x>`` for the model's ``optimizer_<x>`` attribute."""
    names = {id(value): name for name, value in vars(model).items() if name.startswith('optimizer_')}
    return [f"train.optim_{names[id(o)][len('optimizer_'):]}" if id(o) in names else f'optimizers[{i}]'
            for i, o in enumerate(model.optimizers)]


def lr_keys(model: Any) -> List[List[str]]:
    """The options key of each param group's learning rate, per optimiser.

    A model whose groups take their lr from different options says so through its ``lr_option_keys()`` (as
    SLKDModel does); for others (BasicSR's models) every group has ``train.optim_<x>.lr``.
    """
    lr_option_keys = getattr(model, 'lr_option_keys', None)
    if lr_option_keys is not None:
        return lr_option_keys()
    return [[f'{prefix}.lr' + (f' (param group {j})' if len(o.param_groups) > 1 else '')
             for j in range(len(o.param_groups))] for prefix, o in zip(optimizer_keys(model), model.optimizers)]


def changed_settings(model: Any, saved_optimizers: List[Dict[str, Any]],
                     saved_schedulers: List[Dict[str, Any]]) -> List[Tuple[str, Any, Any]]:
    """(options key, saved value, options value) of every setting the freshly built optimisers and schedulers
    (from the options file) have differently from the saved state: base learning rates, other optimiser settings,
    scheduler settings (milestones, gamma, restarts, restart_weights, periods, eta_min, ...)."""
    changes = []
    for prefix, labels, optimizer, saved in zip(optimizer_keys(model), lr_keys(model), model.optimizers,
                                                saved_optimizers):
        for label, group, saved_group in zip(labels, optimizer.param_groups, saved['param_groups']):
            for key, value in group.items():
                if key in GROUP_POSITION - {'initial_lr'} or key not in saved_group:
                    continue
                change = (label if key == 'initial_lr' else f'{prefix}.{key}', _plain(saved_group[key]), _plain(value))
                if change[1] != change[2] and change not in changes:
                    changes.append(change)
    for scheduler, saved in zip(model.schedulers, saved_schedulers):
        for key, value in scheduler.state_dict().items():
            change = (f'train.scheduler.{key}', _plain(saved.get(key)), _plain(value))
            if key not in SCHEDULER_POSITION and change[1] != change[2] and change not in changes:
                changes.append(change)
    return changes


def replay_schedule(model: Any, current_iter: int) -> None:
    """Step the model's (fresh) schedulers as a run does from iteration 1 to ``current_iter``, warm-up included."""
    warmup_iter = model.opt['train'].get('warmup_iter', -1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch warns of scheduler steps without optimiser steps
        for it in range(1, current_iter + 1):
            model.update_learning_rate(it, warmup_iter=warmup_iter)


def check_parameters(model: Any, saved_optimizers: List[Dict[str, Any]]) -> None:
    """Raise an :class:`OptionsError` when an optimiser of ``model`` optimises other parameters than the saved one
    (:func:`parameter_mismatch`): its state cannot continue them (torch's ``load_state_dict`` would fail with
    "loaded state dict has a different number of parameter groups"). ``slkd-train`` refuses such a state of an
    ``SLKDModel`` run before anything is written (``checks.run.check_resumable``); this check, as the model is
    built, covers other models and networks that cannot be built on the ``meta`` device."""
    for prefix, labels, optimizer, saved in zip(optimizer_keys(model), lr_keys(model), model.optimizers,
                                                saved_optimizers):
        mismatch = parameter_mismatch(optimizer.param_groups, saved)
        if mismatch is not None:
            raise parameters_changed(model.opt['path'].get('resume_state'), prefix, labels, mismatch)


def resume_training(self, resume_state: Dict[str, Any]) -> None:
    """``BaseModel.resume_training`` that applies the options file's settings where they differ from the state's.

    The optimisers' states (moments, step counts) always come from the resume state. When the options file's
    learning rates, other optimiser settings (betas, weight_decay, ...) or scheduler settings differ from those
    saved, the run continues as if it had been started with the options file and had reached the state's
    iteration: the freshly built schedulers are stepped through iterations 1 to ``iter`` (warm-up included) and
    kept, and each param group takes their ``lr`` and ``initial_lr`` and the options' settings. So a new base lr
    scales the current one by new/old (for the restart and multi-step schedules, and for cosine annealing with
    ``eta_min: 0``), new milestones or periods take effect as if they had been there from the start (a milestone
    already passed is applied at once, one moved later is undone), and each change is logged on one line, then
    the resulting current lr of each param group that changed. ``warmup_iter`` is not in the state, so a change of
    it cannot be seen; it is applied in the replay. With the same settings the saved scheduler states are loaded
    unchanged, as BasicSR does.
    """
    from basicsr.utils import get_root_logger

    saved_optimizers, saved_schedulers = resume_state['optimizers'], resume_state['schedulers']
    if len(saved_optimizers) != len(self.optimizers) or len(saved_schedulers) != len(self.schedulers):
        raise CheckpointError(f"the resume state has {len(saved_optimizers)} optimisers and {len(saved_schedulers)} "
                              f'schedulers, the model {len(self.optimizers)} and {len(self.schedulers)}: it was '
                              'written by another model type; start a new run.')
    check_parameters(self, saved_optimizers)
    changes = changed_settings(self, saved_optimizers, saved_schedulers)
    if changes:
        replay_schedule(self, resume_state['iter'])
    replayed = [[{k: v for k, v in g.items() if k != 'params'} for g in o.param_groups] for o in self.optimizers]
    for optimizer, saved in zip(self.optimizers, saved_optimizers):
        optimizer.load_state_dict(saved)
    if not changes:
        for scheduler, saved in zip(self.schedulers, saved_schedulers):
            scheduler.load_state_dict(saved)
        return

    logger = get_root_logger()
    for key, old, new in changes:
        logger.info(f'Resume: {key} {_fmt(old)} -> {_fmt(new)} (options file).')
    for labels, optimizer, groups in zip(lr_keys(self), self.optimizers, replayed):
        for label, group, settings in zip(labels, optimizer.param_groups, groups):
            old_lr = group['lr']
            group.update(settings)
            if group['lr'] != old_lr:
                logger.info(f"Resume: the current lr of {label} becomes {group['lr']:g} (was {old_lr:g}), as in a "
                            f"run started with the options file, at iter {resume_state['iter']}.")


def epoch_shape(train_loader: Any, train_sampler: Any) -> Dict[str, int]:
    """What places an iteration inside an epoch (:data:`EPOCH_SHAPE_WORDS`): the batch of each process, the
    iterations per epoch, the training samples and the samples per epoch that ``EnlargedSampler`` shuffles."""
    return {'batch_size': train_loader.batch_size, 'iters_per_epoch': len(train_loader),
            'dataset_size': len(train_sampler.dataset), 'samples_per_epoch': train_sampler.total_size}


def epoch_change(position: ResumePosition, shape: Dict[str, int], consumed: int) -> Optional[str]:
    """Why the resumed run cannot skip the ``consumed`` batches of the saved epoch (a warning line), or None.

    A state saved with another :func:`epoch_shape` (a changed batch size or dataset) places the iteration in
    another epoch than this run's; a state of an older version, which has none, at least has to fall inside the
    epoch. Then the epoch restarts from its first batch, as for a state of another number of processes.
    """
    saved = position.epoch_shape
    if saved is not None:
        changes = [f'{words} {saved[key]} -> {shape[key]}' for key, words in EPOCH_SHAPE_WORDS.items()
                   if key in saved and saved[key] != shape[key]]
        if not changes:
            return None
        reason = f"the training state was saved with epochs of another shape ({', '.join(changes)})"
    elif 0 <= consumed <= shape['iters_per_epoch']:
        return None
    else:
        reason = (f'the training state (epoch {position.epoch}, iter {position.iter}) does not fall inside epoch '
                  f"{position.epoch} of this run's {shape['iters_per_epoch']} iterations per epoch (the batch size "
                  'or the dataset changed)')
    return (f'Resume: {reason}: the current epoch restarts from its first batch and no random state is restored '
            '(each rank keeps the one seeded from manual_seed + rank).')


def _resumable_loaders(create_train_val_dataloader: Callable) -> Callable:
    """Wrap ``create_train_val_dataloader``: after resume, tell the train sampler what to skip and restore."""

    def wrapped(opt, logger):
        result = create_train_val_dataloader(opt, logger)
        train_loader, train_sampler = result[0], result[1]
        opt['epoch_shape'] = epoch_shape(train_loader, train_sampler)  # saved with each training state
        position = opt.get('resume_position')
        for note in position.notes if position is not None else []:
            logger.warning(note)
        if position is not None and position.rng is not None:
            consumed = position.iter - position.epoch * len(train_loader)
            change = epoch_change(position, opt['epoch_shape'], consumed)
            if change is not None:
                logger.warning(change)
            else:
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
    """Replace BasicSR's resume state loading, saving and restoring; make its train sampler resumable mid-epoch."""
    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models.base_model import BaseModel

    basicsr.train.load_resume_state = load_resume_state
    BaseModel.save_training_state = save_training_state
    BaseModel.resume_training = resume_training
    basicsr.train.create_train_val_dataloader = _resumable_loaders(basicsr.train.create_train_val_dataloader)
    EnlargedSampler.__iter__ = _resumable_sampler_iter(EnlargedSampler.__iter__)
