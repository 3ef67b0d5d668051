"""The entry points run BasicSR's own pipelines on the CPU: train, auto-resume, test."""
import glob
import re
import shutil
import subprocess
import sys
from os import path as osp

import pytest
import torch

from helpers import REPO_ROOT, run_entry, sr_options, write_options


def _check(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def test_train_resume_and_test_pipeline(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))

    _check(run_entry('slkd_basicsr.tools.train', ['-opt', opt_path], cwd=str(tmp_path)))
    exp = tmp_path / 'experiments' / opt['name']
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_15.pth', 'net_g_30.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['15.state', '30.state']
    state = torch.load(exp / 'training_states' / '30.state', weights_only=False)
    assert state['iter'] == 30

    out = _check(run_entry('slkd_basicsr.tools.train', ['-opt', opt_path, '--auto_resume', '--force_yml',
                                                        'train:total_iter=45'], cwd=str(tmp_path)))
    assert 'Resuming training from epoch' in out and 'iter: 30.' in out
    assert (exp / 'models' / 'net_g_45.pth').is_file()

    test_opt = {
        'name': 'tiny_restormer_test',
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'datasets': {'test_1': {**opt['datasets']['val'], 'name': 'generated_test'}},
        'network_g': opt['network_g'],
        'path': {'pretrain_network_g': str(exp / 'models' / 'net_g_latest.pth'), 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'metrics': opt['val']['metrics']},
    }
    out = _check(run_entry('slkd_basicsr.tools.test', ['-opt', write_options(test_opt, str(tmp_path / 'test.yml'))],
                           cwd=str(tmp_path)))
    assert 'psnr' in out
    assert len(glob.glob(str(tmp_path / 'results' / 'tiny_restormer_test' / 'visualization' / '*' / '*.png'))) == 2

    # val.amp: bf16 runs the network under autocast: the same images, scored a little differently
    test_opt.update(name='tiny_restormer_test_bf16', val={**test_opt['val'], 'amp': 'bf16', 'save_img': False})
    bf16_path = write_options(test_opt, str(tmp_path / 'bf16.yml'))
    out_bf16 = _check(run_entry('slkd_basicsr.tools.test', ['-opt', bf16_path], cwd=str(tmp_path)))
    psnr, psnr_bf16 = (float(re.search(r'# psnr: ([0-9.]+)', text).group(1)) for text in (out, out_bf16))
    assert psnr != psnr_bf16 and abs(psnr - psnr_bf16) < 0.5


@pytest.mark.parametrize('command', [
    [sys.executable, '-m', 'slkd_basicsr.tools.train', '--help'],
    [sys.executable, osp.join(REPO_ROOT, 'slkd_basicsr', 'tools', 'test.py'), '--help'],
])
def test_entry_points_accept_basicsr_flags(command):
    out = _check(subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT))
    for flag in ('-opt', '--launcher', '--auto_resume', '--debug', '--local_rank', '--force_yml'):
        assert flag in out


def _script(name):
    """A console script installed beside the running interpreter (a venv's bin/), else on PATH."""
    return shutil.which(name, path=osp.dirname(sys.executable)) or shutil.which(name)


@pytest.mark.skipif(_script('slkd-train') is None, reason='console scripts need `pip install`')
def test_console_scripts_installed():
    for script in ('slkd-train', 'slkd-test', 'slkd-make-lmdb', 'slkd-demo'):
        _check(subprocess.run([_script(script), '--help'], capture_output=True, text=True))
