"""Run safety: the whole options file checked, metrics tried and the experiment locked before anything is made.

BasicSR 1.4.2 reads options late and loosely and makes the experiment folder first: a missing section fails with
a ``KeyError`` after ``experiments/<name>`` exists, a batch larger than the dataset trains for zero iterations
and saves an untrained network with exit code 0, a metric that cannot run fails at the first validation, hours in,
and a second run with the same ``name`` renames the live folder of the first. :func:`install` wraps:

- the train and test ``parse_options`` (outermost, after the type check of :mod:`.options`):
  :func:`~slkd_basicsr.options_check.check_options` on the parsed options, every problem in one
  :class:`~slkd_basicsr.options_check.OptionsError` naming the file and each option's dotted key (a file that
  BasicSR's parser itself chokes on, e.g. bad YAML or no ``datasets``, is checked as read, with the same
  message); then, for training, the train dataset is built once to check that each process gets at least one
  iteration per epoch; every ``val.metrics`` entry is run once on a generated image of the size of each
  validation (or test) set's first image (a metric without its model files, with a bad option, or that cannot
  score images that small, e.g. NIQE on 40 px or a ``crop_border`` that crops every pixel, fails here); rank 0
  refuses an experiment folder a live run holds (:mod:`slkd_basicsr.experiment_lock`), and so does ``slkd-test``
  for its results folder; each ``network_*`` with a pretrain path is checked against its file
  (:func:`~.checkpoints.check_checkpoints_fit`); an ``SLKDModel`` training's taps, their pairing and the networks'
  channels are checked by the model's own probe on networks built on the ``meta`` device
  (:func:`~slkd_basicsr.models.distill_taps.check_taps`); a training ``name`` that
  puts BasicSR in debug mode gets a warning line on stderr (:func:`~slkd_basicsr.options_check.options_warnings`;
  not with ``--debug``, which asks for that mode); ``slkd-test`` gets ``val.suffix: ~`` when it is not set, as
  ``SRModel`` indexes it when it saves images; ``path.allow_random_init`` (read by the check) is removed, as
  ``make_exp_dirs`` would make a folder of it. The random states are restored afterwards, so training starts
  exactly as before;
- ``basicsr.train.load_resume_state``, which runs before anything is made or written into the experiment folder:
  the state it found is checked against the options (:func:`check_resumable`), so that a resume the model would
  refuse leaves the folder as it was;
- ``make_exp_dirs`` of ``basicsr.train`` and ``basicsr.test`` is replaced by :func:`make_exp_dirs`: rank 0 locks
  the run's folder before BasicSR's archiving of an old one, which then happens under that lock, and the new
  folder is locked as it is made (:func:`~slkd_basicsr.experiment_lock.lock_new_folder`), so two runs with the
  same name started in the same instant cannot both run; ``basicsr.train.copy_opt_file`` is wrapped so that
  rank 0 locks a resumed run's folder before the first file is written into it (a stale lock of a crashed run is
  reclaimed, with a message). Either way the temporary files of checkpoint saves a killed run left in
  ``models/`` and ``training_states/`` are removed first
  (:func:`~slkd_basicsr.compat.checkpoints.remove_stale_temporary_files`).
"""
import argparse
import math
import os
import sys
import warnings
from os import path as osp
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import yaml

from .. import experiment_lock
from ..options_check import (OptionsError, check_iterations_per_epoch, check_options, options_problems,
                             options_warnings, read_options_file)
from .checkpoints import check_checkpoints_fit, remove_stale_temporary_files

METRIC_PROBE_SIZE = 192  # a side BasicSR's NIQE (96 px blocks at two scales) and every metric here accept
SAVE_FOLDERS = ('models', 'training_states')  # where a run's checkpoints are saved (atomic_torch_save)
# path entries make_exp_dirs makes no folder of, as BasicSR's: checkpoints and settings, not folders of the run
NOT_FOLDERS = ('strict_load', 'pretrain_network', 'resume', 'param_key')


def options_file_path() -> Optional[str]:
    """The ``-opt`` argument of this process's command line (None when there is none)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    return parser.parse_known_args()[0].opt


def _problems_message(source: str, problems: List[str]) -> str:
    count = f'{len(problems)} problem' + ('s' if len(problems) > 1 else '')
    return f'{source} has {count} (nothing was started):\n' + '\n'.join(f'  {line}' for line in problems)


def explain_parse_failure(err: BaseException, source: Optional[str], is_train: bool) -> None:
    """Raise an :class:`OptionsError` for the options file BasicSR's ``parse_options`` failed on, if it has
    problems (else return, and the original error stands). An unknown ``type`` (:class:`UnknownTypeError`) is
    listed with the other problems when there are others."""
    from .options import UnknownTypeError

    if not source:
        return
    raw = read_options_file(source)  # raises OptionsError naming the line for bad YAML
    problems = options_problems(raw, is_train)
    if problems:
        if isinstance(err, UnknownTypeError):
            problems.append(f'(type): {err}')
        raise OptionsError(_problems_message(source, problems)) from err


def _metric_probe(height: int = METRIC_PROBE_SIZE, width: int = METRIC_PROBE_SIZE, channels: int = 3) -> np.ndarray:
    """A smooth, textured uint8 image, as ``tensor2img`` gives the metrics: H x W x C (BGR), H x W for one
    channel."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([128 + 60 * np.sin(xx / 7 + c) * np.cos(yy / 11 - c) for c in range(channels)], axis=-1)
    img += np.random.default_rng(0).normal(0, 8, img.shape)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def validation_shapes(opt: Dict[str, Any], is_train: bool) -> Dict[Tuple[int, ...], str]:
    """The shape (C, H, W) of the first image of each set the metrics will score (``datasets.val*`` in training,
    every set in ``slkd-test``), read from the set built as BasicSR will build it: its ``gt`` (the metrics' reference),
    else its ``lq`` times ``scale``; each shape once, with the first set that has it (``datasets.<key>``)."""
    import copy

    from basicsr.utils.registry import DATASET_REGISTRY

    shapes: Dict[Tuple[int, ...], str] = {}
    for key, dataset_opt in (opt.get('datasets') or {}).items():
        if is_train and key.split('_')[0] != 'val':
            continue
        dataset_opt = copy.deepcopy(dataset_opt)
        dataset = DATASET_REGISTRY.get(dataset_opt['type'])(dataset_opt)  # not build_dataset: no logger yet
        if len(dataset) == 0:
            continue
        item = dataset[0]
        if 'gt' in item:
            shape = tuple(item['gt'].shape)
        else:
            scale = opt.get('scale', 1)
            shape = (item['lq'].shape[0], item['lq'].shape[1] * scale, item['lq'].shape[2] * scale)
        shapes.setdefault(shape, f'datasets.{key}')
    return shapes


def _metric_failure(metric_opt: Dict[str, Any], img: np.ndarray) -> Optional[str]:
    """Why a metric cannot score ``img`` against a copy of it, as the validation would call it (its error, or a NaN
    result: numpy's mean of nothing, e.g. a ``crop_border`` that crops every pixel); None when it can."""
    from basicsr.metrics import calculate_metric

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # numpy's 'Mean of empty slice' and the like: the failure is reported below
        try:
            value = calculate_metric({'img': img, 'img2': img.copy()}, metric_opt)
        except Exception as err:  # noqa: BLE001  (any failure here would stop the first validation)
            return f"{type(err).__name__}: {' '.join(str(err).split()) or type(err).__name__}"
    try:
        nan = math.isnan(float(value))
    except (TypeError, ValueError):  # not one number: the validation's business
        nan = False
    return 'its value is NaN' if nan else None


def metric_problems(opt: Dict[str, Any], is_train: bool) -> List[str]:
    """Run every ``val.metrics`` entry once as the validation would, on a generated image of the size of each
    validation (or test) set's first image (:func:`validation_shapes`), or of :data:`METRIC_PROBE_SIZE` without
    such a set; a line per metric that fails or gives NaN."""
    metrics = (opt.get('val') or {}).get('metrics') or {}
    if not metrics:
        return []
    shapes = validation_shapes(opt, is_train)
    probes = [(_metric_probe(h, w, c), f'the first image of {where}, {h} x {w} pixels')
              for (c, h, w), where in shapes.items()] or [(_metric_probe(), None)]
    problems = []
    for name, metric_opt in metrics.items():
        for img, where in probes:
            reason = _metric_failure(metric_opt, img)
            if reason is None:
                continue
            on = f' on {where}' if where else ''
            crop = metric_opt.get('crop_border')
            if isinstance(crop, int) and 2 * crop >= min(img.shape[:2]):
                reason += f'; crop_border {crop} crops every pixel'
            problems.append(f"val.metrics.{name}: {metric_opt.get('type')} cannot run{on} ({reason}); fix its options "
                            '(see docs/losses_metrics.md) or remove it.')
            break
    return problems


def train_dataset_length(opt: Dict[str, Any]) -> int:
    """Length of the train dataset, built once as BasicSR will build it (without ``build_dataset``'s log line:
    the logger must not exist before BasicSR gives it its log file)."""
    import copy

    from basicsr.utils.registry import DATASET_REGISTRY

    dataset_opt = copy.deepcopy(opt['datasets']['train'])
    return len(DATASET_REGISTRY.get(dataset_opt['type'])(dataset_opt))


def check_run(opt: Dict[str, Any], is_train: bool, source: str) -> None:
    """Everything :func:`install`'s ``parse_options`` checks, on parsed options; raises at the first failed stage."""
    from ..models.distill_taps import check_taps
    from .resume import rng_state, set_rng_state

    check_options(opt, is_train, source)
    state = rng_state()  # building the datasets and running the metrics must not move the seeded random states
    try:
        if is_train:
            check_iterations_per_epoch(opt, train_dataset_length(opt), source)
        problems = metric_problems(opt, is_train)
    finally:
        set_rng_state(state)
    if problems:
        raise OptionsError(_problems_message(source, problems))
    if opt.get('rank', 0) == 0:
        experiment_lock.check_unlocked(*run_folder(opt))
    check_checkpoints_fit(opt)
    if is_train:
        check_taps(opt)


def check_resumable(opt: Dict[str, Any], resume_state: Dict[str, Any]) -> None:
    """What ``load_resume_state`` found, checked before anything is written into the resumed run's folder: the
    networks BasicSR reloads from the experiment's ``models/`` (``check_resume`` pointed their pretrain paths there)
    against the options' archs, and for ``SLKDModel`` what ``train.optim_g`` will optimise (student and SCM, built
    on the ``meta`` device) against what the state's optimiser did.

    Raises:
        CheckpointError: a network's file of the state's iteration is missing or does not fit.
        OptionsError: the param groups changed (a feature term added or removed), as ``resume_training`` would say.
    """
    from ..models.slkd_model import optimizer_groups_on_meta
    from .resume import parameter_mismatch, parameters_changed

    ignored = opt['path'].get('ignore_resume_networks') or []
    check_checkpoints_fit(opt, [key for key in opt if key.startswith('network_') and key not in ignored])
    if opt.get('model_type') != 'SLKDModel' or len(resume_state['optimizers']) != 1:
        return  # other models, and a state of another model type, are checked when the model is built
    found = optimizer_groups_on_meta(opt)
    if found is None:
        return
    groups, lr_keys = found
    mismatch = parameter_mismatch(groups, resume_state['optimizers'][0])
    if mismatch is not None:
        raise parameters_changed(opt['path']['resume_state'], 'train.optim_g', lr_keys, mismatch)


def _checked_resume(load_resume_state: Callable) -> Callable:
    """Wrap ``load_resume_state`` (train_pipeline reads the state before it makes or writes into the experiment
    folder, the options copy first): a state the options cannot continue is refused there
    (:func:`check_resumable`)."""

    def wrapped(opt):
        resume_state = load_resume_state(opt)
        if resume_state is not None:
            check_resumable(opt, resume_state)
        return resume_state

    wrapped.__wrapped__ = load_resume_state
    return wrapped


def run_folder(opt: Dict[str, Any]) -> Tuple[str, str]:
    """The folder a run writes into and what it is locked for: ``experiments/<name>`` for training (the parsed
    options' ``is_train``), ``results/<name>`` for ``slkd-test``."""
    if opt['is_train']:
        return opt['path']['experiments_root'], experiment_lock.TRAINING
    return opt['path']['results_root'], experiment_lock.TEST


def _checked_parse(parse_options: Callable) -> Callable:
    """Wrap ``parse_options``: the options are checked (:func:`check_run`) before it returns."""

    def wrapped(root_path, is_train=True):
        try:
            opt, args = parse_options(root_path, is_train)
        except OptionsError:
            raise
        except Exception as err:  # noqa: BLE001  (KeyError, TypeError, ... or yaml's errors: explained if we can)
            if isinstance(err, (KeyError, TypeError, AttributeError, ValueError, IndexError, yaml.YAMLError)):
                explain_parse_failure(err, options_file_path(), is_train)
            raise
        if not is_train and isinstance(opt.get('val'), dict):
            opt['val'].setdefault('suffix', None)  # SRModel indexes val['suffix'] when slkd-test saves images
        check_run(opt, is_train, args.opt)
        if not getattr(args, 'debug', False) and opt.get('rank', 0) == 0:  # with --debug, debug mode is asked for
            for line in options_warnings(opt, is_train):
                print(f'Warning: {line}', file=sys.stderr, flush=True)
        # read by the check only; BasicSR's make_exp_dirs would make a folder of every other path entry
        opt['path'].pop('allow_random_init', None)
        return opt, args

    wrapped.__wrapped__ = parse_options
    return wrapped


def _report_reclaimed(lock: experiment_lock.ExperimentLock) -> None:
    if lock.reclaimed:
        print(f'Folder {lock.folder!r}: took over the stale lock of a run that ended without releasing it '
              f'({lock.reclaimed}).', flush=True)


def remove_leftover_saves(folder: str) -> None:
    """Remove the temporary files killed checkpoint saves left in the experiment ``folder`` (whose lock this process
    holds), with a line naming them."""
    for sub in SAVE_FOLDERS:
        removed = remove_stale_temporary_files(osp.join(folder, sub))
        if removed:
            print(f'Experiment folder {folder!r}: removed {len(removed)} temporary file(s) of a checkpoint save that '
                  f"was interrupted: {', '.join(osp.join(sub, name) for name in removed)}.", flush=True)


def make_exp_dirs(opt: Dict[str, Any]) -> None:
    """``basicsr.utils.make_exp_dirs`` (rank 0 only, as BasicSR's), its archiving of an old folder done under that
    folder's lock and the new folder locked as it is made (:func:`~slkd_basicsr.experiment_lock.lock_new_folder`);
    then the other ``path`` folders are made, as BasicSR makes them."""
    if opt.get('rank', 0) != 0:
        return
    folder, kind = run_folder(opt)
    tidy = remove_leftover_saves if kind == experiment_lock.TRAINING else None
    _report_reclaimed(experiment_lock.lock_new_folder(folder, kind, before_archive=tidy))
    root_key = 'experiments_root' if opt['is_train'] else 'results_root'
    for key, path in opt['path'].items():
        if key != root_key and not any(word in key for word in NOT_FOLDERS):
            os.makedirs(path, exist_ok=True)


def _locked_copy_opt_file(copy_opt_file: Callable) -> Callable:
    """Wrap ``copy_opt_file`` (train_pipeline's first write into the folder, resumed or not): rank 0 locks a folder
    it does not hold yet (a resumed run's) and removes the leftovers of killed saves first."""

    def wrapped(opt_file, experiments_root):
        from basicsr.utils.dist_util import get_dist_info

        if get_dist_info()[0] == 0 and not experiment_lock.holds(experiments_root):
            _report_reclaimed(experiment_lock.lock_experiment(experiments_root))
            remove_leftover_saves(experiments_root)
        return copy_opt_file(opt_file, experiments_root)

    wrapped.__wrapped__ = copy_opt_file
    return wrapped


def install() -> None:
    """Wrap the train and test ``parse_options``, ``basicsr.train.load_resume_state`` (after :mod:`.resume` has
    replaced it) and ``basicsr.train.copy_opt_file``; replace ``make_exp_dirs`` of ``basicsr.train`` and
    ``basicsr.test``."""
    import basicsr.test
    import basicsr.train

    basicsr.train.parse_options = _checked_parse(basicsr.train.parse_options)
    basicsr.test.parse_options = _checked_parse(basicsr.test.parse_options)
    basicsr.train.load_resume_state = _checked_resume(basicsr.train.load_resume_state)
    basicsr.train.make_exp_dirs = make_exp_dirs
    basicsr.test.make_exp_dirs = make_exp_dirs
    basicsr.train.copy_opt_file = _locked_copy_opt_file(basicsr.train.copy_opt_file)
