"""Helpers shared by the tests: tiny option dicts, generated images, running the entry points."""
import copy
import importlib.util
import os
import subprocess
import sys
from os import path as osp
from types import ModuleType
from typing import Any, Dict, List, Optional

import cv2
import numpy as np
import pytest
import torch
import yaml

from slkd_basicsr.recipes.tiny_nets import tiny_restormer

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
# the torchrun worker that runs slkd_basicsr.tools.train and keeps the model for the distributed tests
DIST_WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'dist_worker.py')

TINY_RESTORMER = tiny_restormer()


def _smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour image (uint8 BGR, size x size x 3) with some structure to restore."""
    coarse = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size]
    img += 40 * np.sin(xx / 3.0)[..., None] * (yy > size // 2)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_pairs(root: str, count: int, size: int, seed: int) -> Dict[str, str]:
    """Write ``count`` clean/noisy PNG pairs under ``root``/gt and ``root``/lq; return both folders."""
    rng = np.random.default_rng(seed)
    folders = {'gt': osp.join(root, 'gt'), 'lq': osp.join(root, 'lq')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for i in range(count):
        gt = _smooth_image(rng, size)
        lq = np.clip(gt.astype(np.float32) + rng.normal(0, 20, gt.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(osp.join(folders['gt'], f'{i:03d}.png'), gt)
        cv2.imwrite(osp.join(folders['lq'], f'{i:03d}.png'), lq)
    return folders


def paired_dataset(folders: Dict[str, str], phase: str) -> Dict[str, Any]:
    opt = {
        'name': f'generated_{phase}',
        'type': 'PairedImageDataset',
        'dataroot_gt': folders['gt'],
        'dataroot_lq': folders['lq'],
        'io_backend': {'type': 'disk'},
    }
    if phase == 'train':
        opt.update(gt_size=32, use_hflip=True, use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=2,
                   dataset_enlarge_ratio=1, prefetch_mode=None)
    return opt


def sr_options(image_pairs: Dict[str, Dict[str, str]]) -> Dict[str, Any]:
    """Options for a tiny Restormer student trained with BasicSR's SRModel on generated pairs."""
    return {
        'name': 'tiny_restormer',
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': 10,
        'datasets': {
            'train': paired_dataset(image_pairs['train'], 'train'),
            'val': paired_dataset(image_pairs['val'], 'val'),
        },
        'network_g': copy.deepcopy(TINY_RESTORMER),
        'path': {
            'pretrain_network_g': None,
            'strict_load_g': True,
            'resume_state': None
        },
        'train': {
            'optim_g': {
                'type': 'Adam',
                'lr': 2e-3,
                'betas': [0.9, 0.999]
            },
            'scheduler': {
                'type': 'MultiStepLR',
                'milestones': [20],
                'gamma': 0.5
            },
            'total_iter': 30,
            'warmup_iter': -1,
            'pixel_opt': {
                'type': 'L1Loss',
                'loss_weight': 1.0,
                'reduction': 'mean'
            },
        },
        'val': {
            'val_freq': 15,
            'save_img': False,
            'metrics': {
                'psnr': {
                    'type': 'calculate_psnr',
                    'crop_border': 0,
                    'test_y_channel': False
                }
            }
        },
        'logger': {
            'print_freq': 5,
            'save_checkpoint_freq': 15,
            'use_tb_logger': False,
            'wandb': None
        },
    }


def write_options(opt: Dict[str, Any], path: str) -> str:
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def run_entry(module: str, args: List[str], cwd: str, timeout: int = 600,
              env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` in ``cwd`` on the CPU (unless ``env`` sets ``CUDA_VISIBLE_DEVICES``),
    with ``env`` added to the environment."""
    pythonpath = REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': pythonpath, **(env or {})}
    return subprocess.run([sys.executable, '-m', module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def load_bench_script(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` as ``python bench/<name>.py`` would: with ``bench/`` first on ``sys.path``."""
    bench = osp.join(REPO_ROOT, 'bench')
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(bench)
        spec = importlib.util.spec_from_file_location(name, osp.join(bench, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def save_checkpoint(net: torch.nn.Module, path: str, param_key: str = 'params') -> str:
    torch.save({param_key: net.state_dict()}, path)
    return path


def tiny_teacher(global_residual: bool = True) -> Dict[str, Any]:
    """A tiny Restormer twice as wide as :data:`TINY_RESTORMER`, standing in for a real teacher."""
    return tiny_restormer(dim=16, global_residual=global_residual)


def slkd_options(image_pairs: Dict[str, Dict[str, str]], teachers: Dict[str, str]) -> Dict[str, Any]:
    """:func:`sr_options` turned into a tiny SLKD run with all four loss terms at the published weights."""
    opt = sr_options(image_pairs)
    opt.update(name='tiny_slkd', model_type='SLKDModel', network_teacher_a=tiny_teacher(True),
               network_teacher_b=tiny_teacher(False))
    opt['path'].update(pretrain_network_teacher_a=teachers['a'], pretrain_network_teacher_b=teachers['b'])
    opt['train'].update(
        kd_opt={'type': 'ImageKLLoss', 'loss_weight': 0.5},
        nc_opt={'type': 'BRISQUEFeatureLoss', 'loss_weight': 0.1},
        et_opt={'type': 'PIQEFeatureLoss', 'loss_weight': 0.1})
    opt['distill'] = {'log_complexity': False, 'check_teachers': False}  # random-weight teachers
    return opt


def in_process(opt: Dict[str, Any]) -> Dict[str, Any]:
    """The keys ``parse_options`` adds, and its seeding, for building a model directly with ``build_model``.

    Seeding as ``parse_options`` does makes each test independent of the random state earlier tests left behind.
    """
    from basicsr.utils import set_random_seed

    opt = copy.deepcopy(opt)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    for key, dataset in opt.get('datasets', {}).items():
        dataset.update(phase=key.split('_')[0], scale=opt.get('scale', 1))
    set_random_seed(opt.get('manual_seed', 0))
    return opt


def train_batch(opt: Dict[str, Any], size: int = 2) -> Dict[str, torch.Tensor]:
    """A fixed batch of ``size`` items from the options' training dataset."""
    from basicsr.data import build_dataset

    dataset = build_dataset({**opt['datasets']['train'], 'phase': 'train', 'scale': 1})
    items = [dataset[i] for i in range(size)]
    return {key: torch.stack([item[key] for item in items]) for key in ('lq', 'gt')}


def train_steps(model: Any, batch: Dict[str, torch.Tensor], iters: int) -> List[Dict[str, float]]:
    """``iters`` optimiser steps on ``batch``; the log of each step."""
    logs = []
    for it in range(1, iters + 1):
        model.feed_data(batch)
        model.optimize_parameters(it)
        logs.append(dict(model.get_current_log()))
    return logs


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
