"""The experiment folder of a resumed run: what killed checkpoint saves left there goes before anything is written."""
import os

import torch

from helpers import killed_save, run_entry, sr_options, write_options
from slkd_basicsr.checks import lock


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
