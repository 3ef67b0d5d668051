"""Resume takes the newest complete state; a run killed and resumed ends where an uninterrupted run ends."""
import os
import signal
import subprocess
import sys
import time

import torch

from helpers import REPO_ROOT, run_entry, slkd_options, write_options
from slkd_basicsr.compat.resume import latest_training_state


def test_latest_training_state_ignores_partial_files(tmp_path):
    for name in ('10.state', '20.state', '.30.state.abc.tmp', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert latest_training_state(str(tmp_path)) == str(tmp_path / '20.state')
    assert latest_training_state(str(tmp_path / 'missing')) is None


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
