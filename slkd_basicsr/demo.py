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
it writes to ``<workdir>/options/`` are ordinary BasicSR options. The networks, data and option builders are
:mod:`slkd_basicsr.recipes.demo_recipe`; this module runs them and reports.
"""
import argparse
import json
import os
import shutil
from os import path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch

from slkd_basicsr import compat  # before basicsr: its import needs our torchvision alias
from basicsr.data import build_dataset
from basicsr.utils import tensor2img
from slkd_basicsr.complexity import count_flops, count_params
from slkd_basicsr.recipes.demo_recipe import (ASSET_TEACHER_A, ASSET_TEACHER_A_ITERS, RAIN, STUDENT, TEACHER,
                                              dataset_options, slkd_options, teacher_a_options, teacher_b_options)
from slkd_basicsr.recipes.evaluation import cpu_latency_ms, load_net, restoration_scores
from slkd_basicsr.recipes.runs import train
from slkd_basicsr.utils import flush_denormals


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
    compat.apply()
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
