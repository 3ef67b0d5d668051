"""Run safety: BasicSR's pipeline rebound so that the whole options file is checked, metrics tried and the
experiment locked before anything is made (the checks themselves are :mod:`slkd_basicsr.checks`).

BasicSR 1.4.2 reads options late and loosely and makes the experiment folder first: a missing section fails with
a ``KeyError`` after ``experiments/<name>`` exists, a batch larger than the dataset trains for zero iterations
and saves an untrained network with exit code 0, a metric that cannot run fails at the first validation, hours in,
and a second run with the same ``name`` renames the live folder of the first. :func:`install` wraps:

- the train and test ``parse_options`` (outermost, after the type check of :mod:`.options`):
  :func:`~slkd_basicsr.checks.run.check_run` on the parsed options (the options check,
  :func:`~slkd_basicsr.checks.options.check_options`, every problem in one
  :class:`~slkd_basicsr.checks.options.OptionsError` naming the file and each option's dotted key; then the
  train dataset's length, the metrics, the experiment lock, the checkpoints and the taps); a file that BasicSR's
  parser itself chokes on, e.g. bad YAML or no ``datasets``, is checked as read, with the same message
  (:func:`~slkd_basicsr.checks.options.explain_parse_failure`); a training ``name`` that puts BasicSR in debug
  mode gets a warning line on stderr (:func:`~slkd_basicsr.checks.options.options_warnings`; not with
  ``--debug``, which asks for that mode); ``slkd-test`` gets ``val.suffix: ~`` when it is not set, as ``SRModel``
  indexes it when it saves images; ``path.allow_random_init`` (read by the check) is removed, as
  ``make_exp_dirs`` would make a folder of it;
- ``basicsr.train.load_resume_state``, which runs before anything is made or written into the experiment folder:
  the state it found is checked against the options (:func:`~slkd_basicsr.checks.run.check_resumable`), so that
  a resume the model would refuse leaves the folder as it was;
- ``make_exp_dirs`` of ``basicsr.train`` and ``basicsr.test`` is replaced by :func:`make_exp_dirs`: rank 0 locks
  the run's folder before BasicSR's archiving of an old one, which then happens under that lock, and the new
  folder is locked as it is made (:func:`~slkd_basicsr.checks.lock.lock_new_folder`), so two runs with the
  same name started in the same instant cannot both run; ``basicsr.train.copy_opt_file`` is wrapped so that
  rank 0 locks a resumed run's folder before the first file is written into it (a stale lock of a crashed run is
  reclaimed, with a message). Either way the temporary files of checkpoint saves a killed run left in
  ``models/`` and ``training_states/`` are removed first
  (:func:`~slkd_basicsr.compat.checkpoints.remove_stale_temporary_files`).
"""
import argparse
import os
import sys
from os import path as osp
from typing import Any, Callable, Dict, Optional

import yaml

from ..checks import lock
from ..checks.options import OptionsError, explain_parse_failure, options_warnings
from ..checks.run import check_resumable, check_run, run_folder
from .checkpoints import remove_stale_temporary_files

SAVE_FOLDERS = ('models', 'training_states')  # where a run's checkpoints are saved (atomic_torch_save)
# path entries make_exp_dirs makes no folder of, as BasicSR's: checkpoints and settings, not folders of the run
NOT_FOLDERS = ('strict_load', 'pretrain_network', 'resume', 'param_key')


def options_file_path() -> Optional[str]:
    """The ``-opt`` argument of this process's command line (None when there is none)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    return parser.parse_known_args()[0].opt


def _checked_resume(load_resume_state: Callable) -> Callable:
    """Wrap ``load_resume_state`` (train_pipeline reads the state before it makes or writes into the experiment
    folder, the options copy first): a state the options cannot continue is refused there
    (:func:`~slkd_basicsr.checks.run.check_resumable`)."""

    def wrapped(opt):
        resume_state = load_resume_state(opt)
        if resume_state is not None:
            check_resumable(opt, resume_state)
        return resume_state

    wrapped.__wrapped__ = load_resume_state
    return wrapped


def _checked_parse(parse_options: Callable) -> Callable:
    """Wrap ``parse_options``: the options are checked (:func:`~slkd_basicsr.checks.run.check_run`) before it
    returns."""

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


def _report_reclaimed(held: lock.ExperimentLock) -> None:
    if held.reclaimed:
        print(f'Folder {held.folder!r}: took over the stale lock of a run that ended without releasing it '
              f'({held.reclaimed}).', flush=True)


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
    folder's lock and the new folder locked as it is made (:func:`~slkd_basicsr.checks.lock.lock_new_folder`);
    then the other ``path`` folders are made, as BasicSR makes them."""
    if opt.get('rank', 0) != 0:
        return
    folder, kind = run_folder(opt)
    tidy = remove_leftover_saves if kind == lock.TRAINING else None
    _report_reclaimed(lock.lock_new_folder(folder, kind, before_archive=tidy))
    root_key = 'experiments_root' if opt['is_train'] else 'results_root'
    for key, path in opt['path'].items():
        if key != root_key and not any(word in key for word in NOT_FOLDERS):
            os.makedirs(path, exist_ok=True)


def _locked_copy_opt_file(copy_opt_file: Callable) -> Callable:
    """Wrap ``copy_opt_file`` (train_pipeline's first write into the folder, resumed or not): rank 0 locks a folder
    it does not hold yet (a resumed run's) and removes the leftovers of killed saves first."""

    def wrapped(opt_file, experiments_root):
        from basicsr.utils.dist_util import get_dist_info

        if get_dist_info()[0] == 0 and not lock.holds(experiments_root):
            _report_reclaimed(lock.lock_experiment(experiments_root))
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
