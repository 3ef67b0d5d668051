"""``slkd-demo``: the whole SLKD pipeline on scikit-image's photos, with no data and no downloads.

1. Teacher A, a small Restormer deraining teacher, is the checkpoint shipped in ``slkd_basicsr/assets``
   (``slkd-demo --train-teacher-a ITERS --save-asset`` is how it was trained; ``--train-teacher-a``
   alone retrains it for this run).
2. Teacher B: the same arch without the global residual, initialised from Teacher A and fine-tuned on
   clean->clean pairs.
3. SLKD: a Res-SL-like student distilled from both teachers through BasicSR's trainer (``SLKDModel``).
4. A table (teacher vs student PSNR/SSIM/PIQE on held-out photos, params, FLOPs, CPU latency) and a PNG
   grid (degraded | student | teacher | clean) under ``<workdir>/results/``.

Every training step runs ``python -m slkd_basicsr.train -opt <yml>`` in ``<workdir>``: the option files
it writes to ``<workdir>/options/`` are ordinary BasicSR options.
"""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
from os import path as osp
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
import yaml
from torch.utils import benchmark

import slkd_basicsr  # noqa: F401  (compat + registries)
from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.metrics import calculate_metric
from basicsr.utils import tensor2img
from slkd_basicsr.complexity import count_flops, count_params
from slkd_basicsr.utils import flush_denormals

ASSET_TEACHER_A = osp.join(osp.dirname(osp.abspath(__file__)), 'assets', 'demo_teacher_a.pth')

TEACHER = {
    'type': 'Restormer',
    'inp_channels': 3,
    'out_channels': 3,
    'dim': 10,
    'num_blocks': [1, 2, 2, 2],
    'num_refinement_blocks': 1,
    'heads': [1, 2, 4, 8],
    'ffn_expansion_factor': 2.66,
    'bias': False,
    'LayerNorm_type': 'WithBias',
}
STUDENT = {**TEACHER, 'dim': 6, 'num_blocks': [1, 1, 1, 1], 'heads': [1, 1, 2, 2]}

TRAIN_IMAGES = ['astronaut', 'chelsea', 'rocket', 'coins', 'brick', 'grass', 'gravel', 'moon']
VAL_IMAGES = ['coffee', 'camera']
RAIN = [{'type': 'rain', 'density': [0.01, 0.03], 'length': [10, 25], 'angle': [-15, 15], 'brightness': [0.5, 0.8]}]
# the recipe of the shipped Teacher A (demo_teacher_a.pth): teacher_a_options(ASSET_TEACHER_A_ITERS) on RAIN
ASSET_TEACHER_A_ITERS = 2000
SLKD_LOSSES = {
    'kd_opt': {'type': 'ImageKLLoss', 'loss_weight': 0.5},
    'nc_opt': {'type': 'BRISQUEFeatureLoss', 'loss_weight': 0.1},
    'et_opt': {'type': 'PIQEFeatureLoss', 'loss_weight': 0.1},
}
METRICS = {
    'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
    'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False},
    'piqe': {'type': 'calculate_piqe', 'crop_border': 0, 'better': 'lower'},
}


def dataset_options(phase: str, degradations: List[Dict[str, Any]], patch: int = 64) -> Dict[str, Any]:
    """A SyntheticDegradationDataset over scikit-image photos: 8 for training, 2 held out.

    The name says the degradations (``skimage_rain_train``; ``skimage_clean_train`` for clean->clean pairs).
    """
    kind = '+'.join(d['type'] for d in degradations) or 'clean'
    opt = {
        'name': f'skimage_{kind}_{phase}',
        'type': 'SyntheticDegradationDataset',
        'source': 'skimage',
        'skimage_images': TRAIN_IMAGES if phase == 'train' else VAL_IMAGES,
        'skimage_scale': 0.5 if phase == 'train' else 0.3,
        'degradations': degradations,
        'io_backend': {'type': 'disk'},
    }
    if phase == 'train':
        opt.update(gt_size=patch, use_hflip=True, use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=4,
                   dataset_enlarge_ratio=50, prefetch_mode=None)
    else:
        opt['seed'] = 0
    return opt


def run_options(name: str, network_g: Dict[str, Any], iters: int, train_degradations: List[Dict[str, Any]],
                lr: float) -> Dict[str, Any]:
    """BasicSR options for one demo training run (SRModel; :func:`slkd_options` turns it into SLKD)."""
    return {
        'name': name,
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train': dataset_options('train', train_degradations),
            'val': dataset_options('val', train_degradations),
        },
        'network_g': network_g,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'optim_g': {'type': 'Adam', 'lr': lr, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
            'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                          'eta_min': lr / 10},
            'total_iter': iters,
            'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {'val_freq': iters, 'save_img': False, 'metrics': {k: METRICS[k] for k in ('psnr', 'ssim')}},
        'logger': {'print_freq': max(iters // 10, 1), 'save_checkpoint_freq': iters, 'use_tb_logger': False,
                   'wandb': None},
    }


def teacher_a_options(iters: int, degradations: List[Dict[str, Any]] = RAIN,
                      name: str = 'demo_teacher_a') -> Dict[str, Any]:
    """Teacher A trained from scratch on ``degradations`` (the shipped one: ``ASSET_TEACHER_A_ITERS`` on RAIN)."""
    return run_options(name, TEACHER, iters, degradations, lr=2e-3)


def teacher_b_options(iters: int, teacher_a: str, name: str = 'demo_teacher_b') -> Dict[str, Any]:
    """Teacher B: Teacher A's arch without the global residual, initialised from it, fine-tuned clean->clean."""
    opt = run_options(name, {**TEACHER, 'global_residual': False}, iters, [], lr=5e-4)
    opt['path']['pretrain_network_g'] = teacher_a
    return opt


def slkd_options(iters: int, teacher_a: str, teacher_b: str, degradations: List[Dict[str, Any]] = RAIN,
                 name: str = 'demo_slkd_student') -> Dict[str, Any]:
    """The SLKD run: published loss weights 1 / 0.5 / 0.1 / 0.1 (``SLKD_LOSSES``), Restormer default taps."""
    opt = run_options(name, STUDENT, iters, degradations, lr=2e-3)
    opt.update(model_type='SLKDModel', network_teacher_a=TEACHER, network_teacher_b={**TEACHER,
                                                                                     'global_residual': False})
    opt['path'].update(pretrain_network_teacher_a=teacher_a, pretrain_network_teacher_b=teacher_b)
    opt['train'].update(copy.deepcopy(SLKD_LOSSES))
    return opt


def train(opt: Dict[str, Any], workdir: str, quiet: bool = False) -> str:
    """Write ``opt`` to ``<workdir>/options/<name>.yml``, train through ``slkd_basicsr.train``; return net_g_latest.

    ``quiet`` keeps the run's console output (BasicSR's log file has it all) unless the run fails.
    """
    os.makedirs(osp.join(workdir, 'options'), exist_ok=True)
    opt_path = osp.join(workdir, 'options', f"{opt['name']}.yml")
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    exp = osp.join(workdir, 'experiments', opt['name'])
    if osp.isdir(exp):  # a rerun of the demo starts afresh instead of archiving old runs
        shutil.rmtree(exp)
    print(f"\n=== training {opt['name']} ({opt['train']['total_iter']} iterations): {opt_path}", flush=True)
    proc = subprocess.run([sys.executable, '-m', 'slkd_basicsr.train', '-opt', opt_path], cwd=workdir,
                          capture_output=quiet, text=True)
    if proc.returncode:
        if quiet:  # the run's own output says why it failed
            print(proc.stdout + proc.stderr, file=sys.stderr)
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return osp.join(exp, 'models', 'net_g_latest.pth')


def load_net(network: Dict[str, Any], path: str) -> torch.nn.Module:
    net = build_network(network)
    net.load_state_dict(torch.load(path, map_location='cpu', weights_only=True)['params'], strict=True)
    return net.eval()


def cpu_latency_ms(net: torch.nn.Module, size: int = 256, threads: int = 2) -> float:
    """Median CPU latency of one 1 x 3 x size x size forward pass, in milliseconds."""
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        timer = benchmark.Timer(stmt='net(x)', globals={'net': net, 'x': x}, num_threads=threads)
        return timer.blocked_autorange(min_run_time=1.0).median * 1e3


@torch.no_grad()
def restoration_scores(net: torch.nn.Module, degradations: List[Dict[str, Any]],
                       metrics: Dict[str, Dict[str, Any]] = METRICS) -> Dict[str, float]:
    """Mean of each metric over the held-out photos, each degraded the same way on every call."""
    dataset = build_dataset({**dataset_options('val', degradations), 'phase': 'val'})
    scores = {metric: 0.0 for metric in metrics}
    for item in dataset:
        restored = tensor2img([net(item['lq'][None])])
        for metric, opt in metrics.items():
            opt = {k: v for k, v in opt.items() if k != 'better'}
            scores[metric] += calculate_metric({'img': restored, 'img2': tensor2img([item['gt']])}, opt)
    return {metric: total / len(dataset) for metric, total in scores.items()}


@torch.no_grad()
def evaluate(nets: Dict[str, torch.nn.Module]) -> Dict[str, Dict[str, float]]:
    """Mean PSNR/SSIM/PIQE of each network on the held-out rainy photos, plus params, FLOPs and latency."""
    return {
        name: {**restoration_scores(net, RAIN), 'params_M': count_params(net) / 1e6,
               'GFLOPs_256': count_flops(net, (3, 256, 256)) / 1e9, 'cpu_ms_256': cpu_latency_ms(net)}
        for name, net in nets.items()
    }


def format_table(rows: Dict[str, Dict[str, float]]) -> str:
    columns = [('PSNR', 'psnr', '.2f'), ('SSIM', 'ssim', '.4f'), ('PIQE', 'piqe', '.2f'),
               ('params (M)', 'params_M', '.3f'), ('GFLOPs@256', 'GFLOPs_256', '.3f'),
               ('CPU ms@256', 'cpu_ms_256', '.1f')]
    lines = ['| network | ' + ' | '.join(title for title, _, _ in columns) + ' |',
             '|---|' + '---|' * len(columns)]
    for name, row in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(format(row[key], fmt) for _, key, fmt in columns) + ' |')
    return '\n'.join(lines)


@torch.no_grad()
def save_grid(nets: Dict[str, torch.nn.Module], path: str) -> None:
    """One held-out photo: degraded | student | teacher | clean, labelled, as a PNG."""
    item = build_dataset({**dataset_options('val', RAIN), 'phase': 'val'})[0]
    panels = [('degraded', item['lq']), ('student (SLKD)', nets['student (SLKD)'](item['lq'][None])[0]),
              ('teacher A', nets['teacher A'](item['lq'][None])[0]), ('clean', item['gt'])]
    images = []
    for label, tensor in panels:
        img = np.ascontiguousarray(tensor2img([tensor]))
        cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        images.append(img)
    cv2.imwrite(path, np.concatenate(images, axis=1))


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='slkd-demo', description=__doc__.splitlines()[0])
    parser.add_argument('--workdir', default='slkd_demo', help='where experiments/ and results/ go')
    parser.add_argument('--teacher-b-iters', type=int, default=100, help='clean->clean fine-tuning of Teacher B')
    parser.add_argument('--student-iters', type=int, default=500, help='SLKD iterations of the student')
    parser.add_argument('--train-teacher-a', type=int, metavar='ITERS', default=0,
                        help='train Teacher A for ITERS iterations instead of using the shipped checkpoint')
    parser.add_argument('--save-asset', action='store_true', help='with --train-teacher-a: replace the shipped one')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    slkd_basicsr.compat.apply()
    workdir = osp.abspath(args.workdir)
    os.makedirs(osp.join(workdir, 'results'), exist_ok=True)
    torch.set_num_threads(2)
    flush_denormals()  # the evaluation and latency below run here, as slkd-train/slkd-test do

    teacher_a = ASSET_TEACHER_A
    if args.train_teacher_a:
        teacher_a = train(teacher_a_options(args.train_teacher_a), workdir)
        if args.save_asset:
            shutil.copyfile(teacher_a, ASSET_TEACHER_A)
    elif not osp.isfile(teacher_a):
        raise FileNotFoundError(f'the shipped Teacher A {teacher_a} is missing; reinstall the package or run '
                                f'slkd-demo --train-teacher-a {ASSET_TEACHER_A_ITERS}.')

    teacher_b = train(teacher_b_options(args.teacher_b_iters, teacher_a), workdir)
    student = train(slkd_options(args.student_iters, teacher_a, teacher_b), workdir)

    nets = {'teacher A': load_net(TEACHER, teacher_a), 'student (SLKD)': load_net(STUDENT, student)}
    rows = evaluate(nets)
    table = format_table(rows)
    save_grid(nets, osp.join(workdir, 'results', 'slkd_demo_grid.png'))
    with open(osp.join(workdir, 'results', 'slkd_demo_table.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    with open(osp.join(workdir, 'results', 'slkd_demo_table.md'), 'w') as f:
        f.write(table + '\n')
    print('\nHeld-out rainy scikit-image photos (coffee, camera); latency: 1 x 3 x 256 x 256, 2 CPU threads.')
    print(table)
    print(f"\nGrid: {osp.join(workdir, 'results', 'slkd_demo_grid.png')}")


if __name__ == '__main__':
    main()
