"""Every shipped options file parses with BasicSR's parser, names registered types, and runs.

Dataset roots and checkpoints are redirected to generated images and freshly initialised networks of the
configured architectures, and the run is cut to 2 iterations at a small patch size.
"""
import copy
import glob
import os
import sys
from os import path as osp

import pytest
import yaml
from basicsr.archs import build_network
from basicsr.utils.options import parse_options

from helpers import REPO_ROOT, run_entry, save_checkpoint, write_options
from slkd_basicsr.checks.types import check_option_types

OPTION_FILES = sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')))
# full-size teachers make a run slow: the default suite runs the deraining recipes, the others are marked slow
FAST_RUNS = {'slkd_derain.yml', 'train_teacher_b_derain.yml', 'test_slkd_derain.yml'}
RUN_FILES = [p if osp.basename(p) in FAST_RUNS else pytest.param(p, marks=pytest.mark.slow) for p in OPTION_FILES]


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def test_option_files_are_shipped():
    names = {osp.basename(p) for p in OPTION_FILES}
    assert {'slkd_derain.yml', 'train_teacher_b_derain.yml', 'test_slkd_derain.yml'} <= names


@pytest.mark.parametrize('path', OPTION_FILES, ids=osp.basename)
def test_parses_and_types_resolve(path, monkeypatch, tmp_path):
    is_train = not osp.basename(path).startswith('test_')
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', path])
    opt, _ = parse_options(str(tmp_path), is_train=is_train)
    check_option_types(opt)


def _redirect(opt, image_pairs, root):
    """Point data and checkpoints at generated ones; shrink the run to 2 iterations at 32 px."""
    opt = copy.deepcopy(opt)
    opt.update(num_gpu=0, name=f"check_{opt['name']}")
    for phase, dataset in opt['datasets'].items():
        folders = image_pairs['train' if phase == 'train' else 'val']
        dataset.update(dataroot_gt=folders['gt'], io_backend={'type': 'disk'})
        if 'dataroot_lq' in dataset:
            dataset['dataroot_lq'] = folders['lq']
        if phase == 'train':
            dataset.update(gt_size=32, batch_size_per_gpu=1, num_worker_per_gpu=0)
    for key in [k for k in opt['path'] if k.startswith('pretrain_network_') and opt['path'][k]]:
        network = opt[key.replace('pretrain_', '')]
        param_key = opt['path'].get(key.replace('pretrain_network', 'param_key'), 'params')
        opt['path'][key] = save_checkpoint(build_network(network), osp.join(root, f'{key}.pth'), param_key)
    if 'train' in opt:
        opt['train']['total_iter'] = 2
        for scheduler_key in ('periods', 'milestones'):
            if scheduler_key in opt['train']['scheduler']:
                opt['train']['scheduler'][scheduler_key] = [2]
        opt['val']['val_freq'] = 2
        opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    if opt.get('model_type') == 'SLKDModel':  # the teachers are random weights now
        opt.setdefault('distill', {})['check_teachers'] = False
    return opt


@pytest.mark.parametrize('path', RUN_FILES, ids=osp.basename)
def test_runs_on_generated_data(path, image_pairs, tmp_path):
    opt = _redirect(_load(path), image_pairs, str(tmp_path))
    module = 'slkd_basicsr.tools.test' if osp.basename(path).startswith('test_') else 'slkd_basicsr.tools.train'
    proc = run_entry(module, ['-opt', write_options(opt, str(tmp_path / 'opt.yml'))], str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if module == 'slkd_basicsr.tools.train':
        assert os.path.isfile(tmp_path / 'experiments' / opt['name'] / 'models' / 'net_g_latest.pth')


@pytest.mark.parametrize('path', [p for p in OPTION_FILES if osp.basename(p).startswith('slkd_')], ids=osp.basename)
def test_slkd_recipes_are_set_for_gpus(path):
    """Pinned batches (copied without blocking), a fused optimiser (non-finite steps skipped on the device), and
    mixed precision named but off (the float32 default the studies measured)."""
    opt = _load(path)
    assert opt['datasets']['train']['pin_memory'] is True
    assert opt['train']['optim_g']['fused'] is True
    assert opt['train']['amp'] is False


@pytest.mark.parametrize('path', [p for p in OPTION_FILES if osp.basename(p).startswith('slkd_')], ids=osp.basename)
def test_slkd_recipes_feed_the_teachers_a_cropped_quarter_of_each_batch(path):
    """The cost default chosen by bench/study.py's cost arms (docs/options.md#what-the-teachers-cost); Uformer pads
    its input to the whole 128 px patch, so its teachers see it uncropped."""
    distill = _load(path)['distill']
    assert distill['teacher_batch'] == 0.25
    assert distill.get('teacher_crop') == (None if 'uformer' in path else 0.75)
