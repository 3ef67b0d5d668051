"""The experiment folder locked before BasicSR archives or writes into it (the lock is :mod:`slkd_basicsr.checks.lock`).

BasicSR 1.4.2's ``make_exp_dirs`` renames an existing ``experiments/<name>`` (or ``results/<name>``) to an
``_archived_`` copy and makes a new one, with nothing to stop a second run with the same ``name`` from renaming the
live folder of the first. :func:`install`:

- replaces ``make_exp_dirs`` of ``basicsr.train`` and ``basicsr.test`` by :func:`make_exp_dirs`: rank 0 locks
  the run's folder before BasicSR's archiving of an old one, which then happens under that lock, and the new
  folder is locked as it is made (:func:`~slkd_basicsr.checks.lock.lock_new_folder`), so two runs with the
  same name started in the same instant cannot both run;
- wraps ``basicsr.train.copy_opt_file`` so that rank 0 locks a resumed run's folder before the first file is
  written into it (a stale lock of a crashed run is reclaimed, with a message).

Either way the temporary files of checkpoint saves a killed run left in ``models/`` and ``training_states/`` are
removed first (:func:`~slkd_basicsr.compat.checkpoints.remove_stale_temporary_files`).
"""
import os
from os import path as osp
from typing import Any, Callable, Dict

from ..checks import lock
from ..checks.run import run_folder
from ..compat.checkpoints import remove_stale_temporary_files

SAVE_FOLDERS = ('models', 'training_states')  # where a run's checkpoints are saved (atomic_torch_save)
# path entries make_exp_dirs makes no folder of, as BasicSR's: checkpoints and settings, not folders of the run
NOT_FOLDERS = ('strict_load', 'pretrain_network', 'resume', 'param_key')


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
    """Replace ``make_exp_dirs`` of ``basicsr.train`` and ``basicsr.test``; wrap ``basicsr.train.copy_opt_file``."""
    import basicsr.test
    import basicsr.train

    basicsr.train.make_exp_dirs = make_exp_dirs
    basicsr.test.make_exp_dirs = make_exp_dirs
    basicsr.train.copy_opt_file = _locked_copy_opt_file(basicsr.train.copy_opt_file)
