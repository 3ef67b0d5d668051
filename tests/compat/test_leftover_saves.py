"""The temporary file of a checkpoint save killed midway is removed on the next run of that experiment, and only it."""
import os
import subprocess
import sys

import torch

from helpers import REPO_ROOT, run_entry, sr_options, write_options
from slkd_basicsr.checks import lock
from slkd_basicsr.compat import checkpoints

# A process that dies during a save: atomic_torch_save's temporary file is left behind, named with its pid
KILLED_SAVE = '''
import os, sys
from slkd_basicsr.compat import checkpoints
path = checkpoints.temporary_path(sys.argv[1])
open(path, 'wb').write(b'half a checkpoint')
print(path, flush=True)
os._exit(0)
'''


def killed_save(final_path) -> str:
    """The temporary file a save of ``final_path`` left when its process died; its pid no longer runs."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', KILLED_SAVE, str(final_path)], capture_output=True, text=True,
                          env=env, check=True, timeout=120)
    return proc.stdout.strip()


def test_only_temporary_files_of_dead_or_earlier_saves_are_removed(tmp_path):
    dead = killed_save(tmp_path / 'net_g_4.pth')
    live = checkpoints.temporary_path(str(tmp_path / 'net_g_8.pth'))  # a save of this process, now
    older = checkpoints.temporary_path(str(tmp_path / '8.state'))
    others = ['net_g_4.pth', '.net_g_4.pth.tmp', '.net_g_4.pth.123.nothex00.tmp', 'x.12.abcdef01.tmp']
    for name in [live, older, *others]:
        (tmp_path / name).write_bytes(b'x')
    os.symlink(tmp_path / 'net_g_4.pth', tmp_path / '.link.pth.1.abcdef01.tmp')  # the pattern, but not a plain file
    past = checkpoints.PROCESS_START - 60
    os.utime(older, (past, past))
    removed = checkpoints.remove_stale_temporary_files(str(tmp_path))
    assert removed == sorted(os.path.basename(p) for p in (dead, older))
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(live), '.link.pth.1.abcdef01.tmp', *others])
    assert checkpoints.remove_stale_temporary_files(str(tmp_path / 'missing')) == []


def test_a_save_names_its_temporary_file_as_the_clean_up_expects(tmp_path, monkeypatch):
    names = []
    replace = os.replace

    def record(src, dst):
        names.append(os.path.basename(src))
        replace(src, dst)

    monkeypatch.setattr(os, 'replace', record)
    checkpoints.atomic_torch_save({'params': {}}, str(tmp_path / 'net_g_2.pth'))
    [name] = names
    match = checkpoints.TEMPORARY_NAME.fullmatch(name)
    assert match and match['final'] == 'net_g_2.pth' and int(match['pid']) == os.getpid()


def test_a_resumed_run_removes_what_a_killed_save_left(tmp_path, capsys):
    """``copy_opt_file``, where a resumed run locks its folder: the leftovers go before anything is written."""
    import basicsr.train

    folder = tmp_path / 'experiments' / 'run'
    (folder / 'models').mkdir(parents=True)
    (folder / 'training_states').mkdir()
    torch.save({'params': {}}, folder / 'models' / 'net_g_4.pth')
    leftovers = [killed_save(folder / 'models' / 'net_g_8.pth'), killed_save(folder / 'training_states' / '8.state')]
    options = tmp_path / 'run.yml'
    options.write_text('name: run\n')
    basicsr.train.copy_opt_file(str(options), str(folder))
    try:
        assert not any(os.path.exists(p) for p in leftovers)
        assert sorted(os.listdir(folder / 'models')) == ['net_g_4.pth'] and not os.listdir(folder / 'training_states')
        printed = capsys.readouterr().out
        assert f"Experiment folder '{folder}': removed 1 temporary file(s) of a checkpoint save that was " \
            f'interrupted: models/{os.path.basename(leftovers[0])}.' in printed
        assert f'training_states/{os.path.basename(leftovers[1])}' in printed
    finally:
        lock.lock_experiment(str(folder)).release()


def test_slkd_train_auto_resume_removes_a_killed_saves_file(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    opt['train']['total_iter'] = 2
    opt['logger']['save_checkpoint_freq'] = 2
    opt['val']['val_freq'] = 10
    path = write_options(opt, str(tmp_path / 'run.yml'))
    first = run_entry('slkd_basicsr.tools.train', ['-opt', path], str(tmp_path), env={'OMP_NUM_THREADS': '1'})
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    models = tmp_path / 'experiments' / opt['name'] / 'models'
    leftover = killed_save(models / 'net_g_4.pth')
    resumed = run_entry('slkd_basicsr.tools.train',
                        ['-opt', path, '--auto_resume', '--force_yml', 'train:total_iter=4'], str(tmp_path),
                        env={'OMP_NUM_THREADS': '1'})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f'removed 1 temporary file(s) of a checkpoint save that was interrupted: models/' \
        f'{os.path.basename(leftover)}.' in resumed.stdout
    assert sorted(os.listdir(models)) == ['net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
