"""Resume takes the newest complete state; a run killed and resumed ends where an uninterrupted run ends."""
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from basicsr.models import build_model

from helpers import REPO_ROOT, in_process, run_entry, slkd_options, sr_options, write_options
from slkd_basicsr.compat.checkpoints import CheckpointError
from slkd_basicsr.compat.resume import latest_training_state, newest_readable_state


def test_latest_training_state_ignores_partial_files(tmp_path):
    for name in ('10.state', '20.state', '.30.state.abc.tmp', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert latest_training_state(str(tmp_path)) == str(tmp_path / '20.state')
    assert latest_training_state(str(tmp_path / 'missing')) is None


def test_auto_resume_refuses_when_no_state_reads(tmp_path):
    (tmp_path / '6.state').write_bytes(b'')
    torch.save({'params': {}}, str(tmp_path / '3.state'))
    opt = {'path': {'training_states': str(tmp_path)}, 'num_gpu': 0, 'rank': 0}
    with pytest.raises(CheckpointError, match=r"(?s)none of the 2 training states.*6.state.*empty \(0 bytes\)"
                                              r".*3.state.*no training state: it lacks epoch, iter"):
        newest_readable_state(opt)


@pytest.fixture
def basicsr_log():
    """The messages BasicSR's logger (which does not propagate to pytest's) records during the test."""
    from basicsr.utils import get_root_logger

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = get_root_logger()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(level)


def _schedule_model(image_pairs, optim_g, scheduler):
    opt = in_process(sr_options(image_pairs))
    opt['train'].update(optim_g={'type': 'Adam', **optim_g}, scheduler=scheduler, warmup_iter=3)
    return build_model(opt)


def _lrs(model, first, last):
    """The lr of each iteration from ``first`` to ``last``, stepped as BasicSR's training loop does."""
    lrs = []
    for it in range(first, last + 1):
        model.update_learning_rate(it, warmup_iter=model.opt['train']['warmup_iter'])
        lrs.append(model.optimizers[0].param_groups[0]['lr'])
    return lrs


SCHEDULES = {
    'multistep': ({'type': 'MultiStepLR', 'milestones': [20], 'gamma': 0.5},
                  {'type': 'MultiStepLR', 'milestones': [4, 9], 'gamma': 0.1},
                  ['Resume: train.scheduler.milestones [20] -> [4, 9] (options file).',
                   'Resume: train.scheduler.gamma 0.5 -> 0.1 (options file).']),
    'cosine': ({'type': 'CosineAnnealingRestartLR', 'periods': [10, 10], 'restart_weights': [1, 0.5], 'eta_min': 1e-7},
               {'type': 'CosineAnnealingRestartLR', 'periods': [8, 12], 'restart_weights': [1, 0.5], 'eta_min': 1e-6},
               ['Resume: train.scheduler.periods [10, 10] -> [8, 12] (options file).',
                'Resume: train.scheduler.eta_min 1e-07 -> 1e-06 (options file).']),
}


@pytest.mark.parametrize('schedule', SCHEDULES)
def test_resume_continues_as_if_started_with_the_changed_options(image_pairs, schedule, basicsr_log):
    old_scheduler, new_scheduler, scheduler_lines = SCHEDULES[schedule]
    old = _schedule_model(image_pairs, {'lr': 2e-3}, old_scheduler)
    _lrs(old, 1, 6)
    state = {'epoch': 0, 'iter': 6, 'optimizers': [o.state_dict() for o in old.optimizers],
             'schedulers': [s.state_dict() for s in old.schedulers]}

    same = _schedule_model(image_pairs, {'lr': 2e-3}, old_scheduler)
    same.resume_training(state)
    assert not [m for m in basicsr_log if m.startswith('Resume:')]
    assert same.schedulers[0].state_dict() == state['schedulers'][0]

    resumed = _schedule_model(image_pairs, {'lr': 1e-3, 'weight_decay': 1e-4}, new_scheduler)
    resumed.resume_training(state)
    for line in ['Resume: train.optim_g.lr 0.002 -> 0.001 (options file).',
                 'Resume: train.optim_g.weight_decay 0 -> 0.0001 (options file).'] + scheduler_lines:
        assert line in basicsr_log
    assert any(m.startswith('Resume: the current lr of train.optim_g.lr becomes ') for m in basicsr_log)
    assert resumed.optimizers[0].param_groups[0]['weight_decay'] == 1e-4
    uninterrupted = _lrs(_schedule_model(image_pairs, {'lr': 1e-3, 'weight_decay': 1e-4}, new_scheduler), 1, 20)
    assert _lrs(resumed, 7, 20) == pytest.approx(uninterrupted[6:], rel=1e-12)


def _run_options(image_pairs, teachers, tmp_path):
    opt = slkd_options(image_pairs, teachers)
    opt['train']['total_iter'] = 10
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    return write_options(opt, str(tmp_path / 'slkd.yml'))


def _weights(root):
    models = root / 'experiments' / 'tiny_slkd' / 'models'
    return {name: torch.load(models / f'{name}_latest.pth', weights_only=True)['params']
            for name in ('net_g', 'net_scm')}


def test_sigkill_then_auto_resume_matches_uninterrupted_run(image_pairs, teachers, tmp_path):
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
    proc = run_entry('slkd_basicsr.train', ['-opt', _run_options(image_pairs, teachers, straight)], str(straight))
    assert proc.returncode == 0, proc.stderr[-3000:]

    opt_path = _run_options(image_pairs, teachers, killed)
    states = killed / 'experiments' / 'tiny_slkd' / 'training_states'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHONPATH=REPO_ROOT)
    victim = subprocess.Popen([sys.executable, '-m', 'slkd_basicsr.train', '-opt', opt_path], cwd=str(killed), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (states / '6.state').exists() and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed / 'experiments' / 'tiny_slkd' / 'models' / 'net_g_latest.pth').exists(), 'killed too late'

    proc = run_entry('slkd_basicsr.train', ['-opt', opt_path, '--auto_resume'], str(killed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming training from epoch' in proc.stdout + proc.stderr
    expected, resumed = _weights(straight), _weights(killed)
    for name in expected:
        assert all(torch.equal(expected[name][k], resumed[name][k]) for k in expected[name]), name


def _log_lines(proc, needle):
    return [line for line in (proc.stdout + proc.stderr).splitlines() if needle in line]


def test_nonfinite_advice_works_and_unreadable_newest_state_is_skipped(image_pairs, teachers, tmp_path, monkeypatch):
    """NonFiniteLossError's advice followed end to end: a huge lr stops the run, the last checkpoint is intact, a
    lower lr and a moved milestone in the options file are applied on --auto_resume (logged), training goes on.
    Meanwhile the newest state is truncated: auto-resume warns, takes the previous one and finishes."""
    opt = slkd_options(image_pairs, teachers)
    opt['train'].update(total_iter=6, max_nonfinite_steps=2)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    opt_path = str(tmp_path / 'slkd.yml')
    experiment = tmp_path / 'experiments' / 'tiny_slkd'
    states = experiment / 'training_states'
    os.umask(0o022)  # the subprocesses inherit it; restored below
    monkeypatch.setattr(os, 'umask', os.umask)

    proc = run_entry('slkd_basicsr.train', ['-opt', write_options(opt, opt_path)], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in (experiment / 'models' / 'net_g_6.pth', experiment / 'models' / 'net_g_latest.pth', states / '6.state'):
        assert path.stat().st_mode & 0o777 == 0o644, path

    # the lr raised far too high: applied on resume, the run diverges and stops before its next save
    opt['train']['optim_g']['lr'] = 1e30
    opt['train']['total_iter'] = 12
    saved = (states / '6.state').read_bytes()
    proc = run_entry('slkd_basicsr.train', ['-opt', write_options(opt, opt_path), '--auto_resume'], str(tmp_path))
    assert proc.returncode != 0
    assert _log_lines(proc, 'Resume: train.optim_g.lr 0.002 -> 1e+30 (options file).')
    assert _log_lines(proc, 'Resume: the current lr of train.optim_g.lr becomes 1e+30 (was 0.002)')
    assert proc.stderr.strip().splitlines()[-1].startswith(
        'slkd_basicsr.models.slkd_model.NonFiniteLossError: 2 steps in a row had a non-finite loss')
    assert (states / '6.state').read_bytes() == saved and not (states / '9.state').exists()

    # the newest state is damaged meanwhile; the advice: lower lr (and a milestone moved), --auto_resume
    (states / '6.state').write_bytes(saved[:len(saved) // 2])
    opt['train']['optim_g']['lr'] = 1e-3
    opt['train']['scheduler']['milestones'] = [8]
    proc = run_entry('slkd_basicsr.train', ['-opt', write_options(opt, opt_path), '--auto_resume'], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _log_lines(proc, f"Resume: skipping the unreadable training state '{states / '6.state'}'")
    assert _log_lines(proc, 'Resuming training from epoch: 0, iter: 3.')
    assert _log_lines(proc, 'Resume: train.optim_g.lr 0.002 -> 0.001 (options file).')
    assert _log_lines(proc, 'Resume: train.lr_scm (unset: train.optim_g.lr) 0.002 -> 0.001 (options file).')
    assert _log_lines(proc, 'Resume: train.scheduler.milestones [20] -> [8] (options file).')
    log = proc.stdout + proc.stderr
    lrs = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r'iter:\s*(\d+), lr:\(([0-9.e+-]+),', log)}
    # as in a run started with these options: BasicSR steps the scheduler from iter 2, milestone 8 acts at iter 9
    assert lrs == {**{it: 1e-3 for it in range(4, 9)}, **{it: 5e-4 for it in range(9, 13)}}
    losses = [float(v) for v in re.findall(r'l_total: (\S+)', log)]
    assert len(losses) == 9 and all(math.isfinite(v) for v in losses), log[-3000:]
    assert (states / '12.state').exists() and (experiment / 'models' / 'net_g_latest.pth').exists()
