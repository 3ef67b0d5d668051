"""The experiment lock with real processes: a live holder blocks a second run, a dead one is reclaimed."""
import json
import os
import signal
import subprocess
import sys
from os import path as osp

import pytest

from helpers import REPO_ROOT
from slkd_basicsr.checks import lock as experiment_lock
from slkd_basicsr.checks.lock import (LOCK_NAME, ExperimentLockedError, LockFileError, check_unlocked, lock_experiment,
                                      lock_new_folder)

# The holder loads the module from its file: no package import, so it starts in a fraction of a second.
HOLDER = '''
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location('experiment_lock', sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.lock_experiment(sys.argv[2])
print('locked', flush=True)
if sys.argv[3] == 'wait':
    time.sleep(120)
'''


def start_holder(folder, mode='wait'):
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, experiment_lock.__file__, str(folder), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line == 'locked', proc.stderr.read()
    return proc


@pytest.fixture
def holder(tmp_path):
    folder = tmp_path / 'experiments' / 'run'
    folder.mkdir(parents=True)
    proc = start_holder(folder)
    yield folder, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_live_run_blocks_a_second_one_with_a_message_naming_the_folder(holder):
    folder, proc = holder
    with pytest.raises(ExperimentLockedError) as err:
        check_unlocked(str(folder))
    message = str(err.value)
    assert repr(str(folder)) in message
    assert f'pid {proc.pid} on ' in message and 'running training' in message
    with pytest.raises(ExperimentLockedError, match=f'pid {proc.pid} '):
        lock_experiment(str(folder))


def test_a_killed_run_leaves_a_stale_lock_that_is_reclaimed(holder):
    folder, proc = holder
    kill(proc)
    assert osp.isfile(folder / experiment_lock.LOCK_NAME)  # SIGKILL: no clean-up ran, the kernel dropped the lock
    check_unlocked(str(folder))
    lock = lock_experiment(str(folder))
    try:
        assert lock.held and f'pid {proc.pid} ' in lock.reclaimed
        with open(folder / experiment_lock.LOCK_NAME) as f:
            assert f'pid {os.getpid()} on ' in f.read()
    finally:
        lock.release()
    assert not osp.exists(folder / experiment_lock.LOCK_NAME)


def test_a_killed_run_is_archived_as_basicsr_does(holder):
    from basicsr.utils import mkdir_and_rename

    folder, proc = holder
    (folder / 'net_g_5.pth').write_bytes(b'old run')
    kill(proc)
    check_unlocked(str(folder))
    mkdir_and_rename(str(folder))
    archived = [p for p in os.listdir(folder.parent) if p.startswith('run_archived_')]
    assert len(archived) == 1 and osp.isfile(folder.parent / archived[0] / 'net_g_5.pth')
    with lock_experiment(str(folder)) as lock:
        assert lock.reclaimed is None and os.listdir(folder) == [experiment_lock.LOCK_NAME]


def test_a_finished_run_removes_its_lock(tmp_path):
    proc = start_holder(tmp_path, mode='exit')
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0
    assert not osp.exists(tmp_path / experiment_lock.LOCK_NAME)
    with lock_experiment(str(tmp_path)) as lock:
        assert lock.reclaimed is None


def test_a_lock_held_here_blocks_another_process(tmp_path):
    with lock_experiment(str(tmp_path)):
        proc = subprocess.run([sys.executable, '-c', HOLDER, experiment_lock.__file__, str(tmp_path), 'exit'],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert 'ExperimentLockedError' in proc.stderr and f'pid {os.getpid()} on ' in proc.stderr
    proc = start_holder(tmp_path, mode='exit')  # released: the other process gets it
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def test_an_in_process_run_does_not_lock_out_the_next_one(tmp_path):
    first = lock_experiment(str(tmp_path))
    assert lock_experiment(str(tmp_path)) is first
    check_unlocked(str(tmp_path))  # an earlier run of this process: released so the folder can be archived
    assert not first.held and not osp.exists(tmp_path / experiment_lock.LOCK_NAME)


def test_a_missing_folder_or_lock_file_is_unlocked(tmp_path):
    check_unlocked(str(tmp_path / 'never_made'))
    check_unlocked(str(tmp_path))


# ---- links, hard links and the same-instant window (issue 26) -----------------------------------------------------

@pytest.mark.parametrize('dangling', [False, True], ids=['to a file', 'dangling'])
def test_a_planted_symlink_is_refused_and_never_written_through(tmp_path, dangling):
    target = tmp_path / 'precious.txt'
    if not dangling:
        target.write_text('keep me\n')
    folder = tmp_path / 'run'
    folder.mkdir()
    os.symlink(target, folder / experiment_lock.LOCK_NAME)
    for call in (check_unlocked, lock_experiment):
        with pytest.raises(LockFileError, match='is a symbolic link, which this project never makes; nothing was '
                           'written through it. Remove it and start the run again.'):
            call(str(folder))
    assert target.read_text() == 'keep me\n' if not dangling else not osp.lexists(target)


def test_a_planted_hard_link_is_refused(tmp_path):
    target = tmp_path / 'precious.txt'
    target.write_text('keep me\n')
    folder = tmp_path / 'run'
    folder.mkdir()
    os.link(target, folder / experiment_lock.LOCK_NAME)
    with pytest.raises(LockFileError, match='a file with 2 names'):
        lock_experiment(str(folder))
    assert target.read_text() == 'keep me\n'


def test_a_new_folder_archives_the_old_one_under_its_lock(holder):
    folder, proc = holder
    (folder / 'net_g_5.pth').write_bytes(b'old run')
    with pytest.raises(ExperimentLockedError):  # live: nothing archived
        lock_new_folder(str(folder))
    assert os.listdir(folder.parent) == ['run']
    kill(proc)
    with lock_new_folder(str(folder)) as lock:
        assert lock.held and f'pid {proc.pid} ' in lock.reclaimed and os.listdir(folder) == [LOCK_NAME]
        [archived] = [p for p in os.listdir(folder.parent) if p.startswith('run_archived_')]
        assert os.listdir(folder.parent / archived) == ['net_g_5.pth']  # the old lock went with it, then released


def test_a_folder_holding_only_a_stale_lock_is_taken_without_archiving(holder):
    folder, proc = holder
    kill(proc)
    with lock_new_folder(str(folder)) as lock:
        assert f'pid {proc.pid} ' in lock.reclaimed
    assert os.listdir(folder.parent) == ['run']


# Another run with the same name, in its own process, making its folder with what slkd-train uses
RIVAL = '''
import json, sys
from slkd_basicsr.tools.process import prepare_basicsr
prepare_basicsr()
import basicsr.train
try:
    basicsr.train.make_exp_dirs(json.loads(sys.argv[1]))
except Exception as err:
    print(f'{type(err).__name__}: {err}', flush=True)
    sys.exit(2)
print('made', flush=True)
'''


def test_two_runs_started_in_the_same_instant_do_not_both_run(tmp_path, monkeypatch):
    """The rival starts just as this run archives the old folder (the window widened to the whole rival run)."""
    import basicsr.train

    folder = tmp_path / 'experiments' / 'run'
    folder.mkdir(parents=True)
    (folder / 'net_g_5.pth').write_bytes(b'old run')
    paths = {key: str(folder / sub) for key, sub in (('experiments_root', ''), ('models', 'models'), ('log', ''),
                                                     ('training_states', 'training_states'))}
    opt = {'name': 'run', 'is_train': True, 'rank': 0, 'path': paths}
    rename, rivals = os.rename, []

    pythonpath = REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHONPATH=pythonpath)

    def rename_after_a_rival(src, dst):
        rivals.append(subprocess.run([sys.executable, '-c', RIVAL, json.dumps(opt)], capture_output=True, text=True,
                                     env=env, timeout=300))
        monkeypatch.setattr(os, 'rename', rename)
        rename(src, dst)

    monkeypatch.setattr(os, 'rename', rename_after_a_rival)
    basicsr.train.make_exp_dirs(opt)
    try:
        [rival] = rivals
        assert rival.returncode == 2, rival.stdout + rival.stderr
        assert f"ExperimentLockedError: The experiment folder '{folder}' is in use by a running training (pid " \
            f'{os.getpid()} ' in rival.stdout
        assert experiment_lock.holds(str(folder))
        assert sorted(os.listdir(folder)) == [LOCK_NAME, 'models', 'training_states']
        [archived] = [p for p in os.listdir(folder.parent) if p != 'run']
        assert os.listdir(folder.parent / archived) == ['net_g_5.pth']
    finally:
        lock_experiment(str(folder)).release()
