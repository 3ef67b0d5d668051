"""``slkd-demo``: the whole SLKD pipeline on scikit-image's photos, with no data and no downloads.

1. Teacher A, a small Restormer deraining teacher, and Teacher B, the same arch without the global residual
   trained on clean->clean pairs, are the checkpoints shipped in ``slkd_basicsr/assets``
   (``--train-teacher-a ITERS`` / ``--train-teacher-b ITERS`` retrain them for this run, ``--save-asset``
   replaces the shipped ones).
2. SLKD: a student with 12% of the teacher's parameters distilled from both teachers through BasicSR's trainer
   (``SLKDModel``), and the same student trained alone with the same seed, data and budget.
3. A table (teachers and both students: PSNR/SSIM/PIQE on held-out photos, params, FLOPs, CPU latency, each
   student's training wall time) ending with the paired gain of SLKD over the student alone and how much longer
   SLKD trained, and a PNG grid (degraded | student alone | student
   (SLKD) | teacher A | clean, 256 px panels) under ``<workdir>/results/``.

Every training step runs ``python -m slkd_basicsr.tools.train -opt <yml>`` in ``<workdir>``: the option files
it writes to ``<workdir>/options/`` are ordinary BasicSR options, and each run's output goes to the console and
to ``<workdir>/logs/<name>.log``. The networks, data and option builders are
:mod:`slkd_basicsr.recipes.demo_recipe`; this module runs them and reports.

Exit status: 0 on success; 2 for a bad argument or a missing shipped teacher checkpoint (before anything is made),
a failed training run (one line naming the run and its log) or a common OS fault (one line).
"""
import argparse
import json
import os
import shutil
import sys
import time
from os import path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from basicsr.data import build_dataset
from basicsr.utils import tensor2img

from slkd_basicsr.compat.checkpoints import load_network
from slkd_basicsr.complexity import count_flops, count_params, cpu_latency_ms
from slkd_basicsr.errors import CheckpointError
from slkd_basicsr.recipes.demo_recipe import (ASSET_TEACHER_A, ASSET_TEACHER_A_ITERS, ASSET_TEACHER_B,
                                              ASSET_TEACHER_B_ITERS, CLEAN, HELD_OUT_DRAWS, RAIN, STUDENT, TEACHER,
                                              TEACHER_B, dataset_options, slkd_options, student_alone_options,
                                              teacher_a_options, teacher_b_options)
from slkd_basicsr.recipes.evaluation import restoration_scores
from slkd_basicsr.recipes.runs import RunFailed, train
from slkd_basicsr.tools.arguments import ArgumentParser, folder_path, non_negative_int, positive_int
from slkd_basicsr.tools.guard import main_guard
from slkd_basicsr.tools.process import flush_denormals, prepare_basicsr

GRID_PANEL = 256  # px: large enough to see the rain streaks
GRID_SCALE = 0.7  # of the held-out photo 'coffee' (400 x 600), so that a 256 px crop shows a good part of it
STUDENT_ROWS = ('student alone', 'student (SLKD)')


@torch.no_grad()
def evaluate(nets: Dict[str, torch.nn.Module],
             degradations: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Dict[str, float]]:
    """Mean PSNR/SSIM/PIQE of each network on the held-out photos with its ``degradations`` (the teachers and the
    students: rain; Teacher B: none, as it is used), plus params, FLOPs and latency."""
    return {
        name: {**restoration_scores(net, degradations[name]), 'params_M': count_params(net) / 1e6,
               'GFLOPs_256': count_flops(net, (3, 256, 256)) / 1e9, 'cpu_ms_256': cpu_latency_ms(net)}
        for name, net in nets.items()
    }


def paired_gain_line(rows: Dict[str, Dict[str, float]]) -> str:
    """The PSNR difference of the two students, trained with the same seed, data and budget."""
    gain = rows['student (SLKD)']['psnr'] - rows['student alone']['psnr']
    return f'paired gain (SLKD - student alone): {gain:+.2f} dB PSNR'


def train_time_line(rows: Dict[str, Dict[str, float]]) -> str:
    """How much longer the SLKD run trained than the student alone (wall seconds, subprocess start included)."""
    slkd, alone = rows['student (SLKD)']['train_s'], rows['student alone']['train_s']
    return f'training time: SLKD {slkd:.0f} s, student alone {alone:.0f} s ({slkd / alone:.1f}x)'


def format_table(rows: Dict[str, Dict[str, float]]) -> str:
    """Markdown table of ``rows``; a value that is None (a shipped teacher's training time) shows as '-'."""
    columns = [('PSNR', 'psnr', '.2f'), ('SSIM', 'ssim', '.4f'), ('PIQE', 'piqe', '.2f'),
               ('params (M)', 'params_M', '.3f'), ('GFLOPs@256', 'GFLOPs_256', '.3f'),
               ('CPU ms@256', 'cpu_ms_256', '.1f'), ('train s', 'train_s', '.0f')]
    lines = ['| network | ' + ' | '.join(title for title, _, _ in columns) + ' |',
             '|---|' + '---|' * len(columns)]
    for name, row in rows.items():
        cells = ['-' if row.get(key) is None else format(row[key], fmt) for _, key, fmt in columns]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def timed_train(options: Dict, workdir: str) -> Tuple[str, float]:
    """The checkpoint of a training run and its wall seconds."""
    start = time.perf_counter()
    path = train(options, workdir)
    return path, time.perf_counter() - start


@torch.no_grad()
def save_grid(nets: Dict[str, torch.nn.Module], path: str) -> None:
    """A 256 px crop of a held-out photo: degraded | student alone | student (SLKD) | teacher A | clean, labelled."""
    opt = {**dataset_options('val', RAIN), 'skimage_images': ['coffee'], 'skimage_scale': GRID_SCALE, 'draws': 1}
    item = build_dataset({**opt, 'phase': 'val'})[0]
    top, left = [(side - GRID_PANEL) // 2 for side in item['lq'].shape[-2:]]
    lq, gt = (item[key][:, top:top + GRID_PANEL, left:left + GRID_PANEL] for key in ('lq', 'gt'))
    panels = [('degraded', lq)] + [(name, nets[name](lq[None])[0]) for name in STUDENT_ROWS + ('teacher A', )]
    panels.append(('clean', gt))
    images = []
    for label, tensor in panels:
        img = np.ascontiguousarray(tensor2img([tensor]))
        cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        images.append(img)
    cv2.imwrite(path, np.concatenate(images, axis=1))


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The demo's arguments, each checked here (one error line, exit status 2) so that a bad one makes nothing."""
    parser = ArgumentParser(prog='slkd-demo', description=__doc__.splitlines()[0])
    parser.add_argument('--workdir', type=folder_path, default='slkd_demo',
                        help='where options/, logs/, experiments/ and results/ go (made if needed)')
    parser.add_argument('--student-iters', type=positive_int, default=500,
                        help='iterations of each student (SLKD and alone)')
    parser.add_argument('--seed', type=non_negative_int, default=0, help='manual_seed of both student runs')
    parser.add_argument('--train-teacher-a', type=non_negative_int, metavar='ITERS', default=0,
                        help='train Teacher A for ITERS iterations instead of using the shipped checkpoint (0: do not)')
    parser.add_argument('--train-teacher-b', type=non_negative_int, metavar='ITERS', default=0,
                        help='train Teacher B for ITERS iterations instead of using the shipped checkpoint (0: do not)')
    parser.add_argument('--save-asset', action='store_true',
                        help='with --train-teacher-a/-b: replace the shipped checkpoints')
    return parser.parse_args(argv)


def teacher(shipped: str, iters: int, options, save: bool, workdir: str) -> str:
    """The shipped checkpoint, or one trained for ``iters`` iterations (copied over the shipped one if ``save``)."""
    if iters:
        path = train(options(iters), workdir)
        if save:
            shutil.copyfile(path, shipped)
        return path
    return shipped


def check_shipped_teachers(args: argparse.Namespace) -> None:
    """Before anything is made: the shipped teacher checkpoints this run uses (those not retrained) must exist.

    Raises:
        CheckpointError: naming the missing file and the two ways out.
    """
    teachers = ((ASSET_TEACHER_A, args.train_teacher_a, '--train-teacher-a', ASSET_TEACHER_A_ITERS),
                (ASSET_TEACHER_B, args.train_teacher_b, '--train-teacher-b', ASSET_TEACHER_B_ITERS))
    for shipped, iters, flag, retrain_iters in teachers:
        if not iters and not osp.isfile(shipped):
            raise CheckpointError(f'the shipped checkpoint {shipped} is missing; reinstall the package or run '
                                  f'slkd-demo {flag} {retrain_iters}. Nothing was made.')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; the exit status: 0, or 2 with one line on stderr for a failed training run (naming its log),
    a missing shipped checkpoint or a common OS fault (:func:`~slkd_basicsr.tools.guard.main_guard`)."""
    args = parse_args(argv)
    try:
        main_guard('slkd-demo', lambda: run_demo(args))
    except RunFailed as err:  # the run's own output, traceback included, is in its log and was echoed above
        print(f'slkd-demo: error: training run {err.name} failed (exit status {err.returncode}); its output is in '
              f'{err.log}', file=sys.stderr)
        return 2
    return 0


def run_demo(args: argparse.Namespace) -> None:
    """Teachers, both students, the evaluation, the table and the grid, under ``args.workdir``."""
    prepare_basicsr()
    check_shipped_teachers(args)
    workdir = args.workdir
    os.makedirs(osp.join(workdir, 'results'), exist_ok=True)
    torch.set_num_threads(2)
    flush_denormals()  # the evaluation and latency below run here, as slkd-train/slkd-test do

    teacher_a = teacher(ASSET_TEACHER_A, args.train_teacher_a, teacher_a_options, args.save_asset, workdir)
    teacher_b = teacher(ASSET_TEACHER_B, args.train_teacher_b, teacher_b_options, args.save_asset, workdir)
    alone, alone_s = timed_train(student_alone_options(args.student_iters, seed=args.seed), workdir)
    student, student_s = timed_train(slkd_options(args.student_iters, teacher_a, teacher_b, seed=args.seed), workdir)

    nets = {'teacher A': load_network(TEACHER, teacher_a), 'teacher B': load_network(TEACHER_B, teacher_b),
            'student alone': load_network(STUDENT, alone), 'student (SLKD)': load_network(STUDENT, student)}
    rows = evaluate(nets, {'teacher A': RAIN, 'teacher B': CLEAN, 'student alone': RAIN, 'student (SLKD)': RAIN})
    for name, seconds in (('teacher A', None), ('teacher B', None), ('student alone', alone_s),
                          ('student (SLKD)', student_s)):
        rows[name]['train_s'] = seconds
    table = format_table(rows) + '\n\n' + paired_gain_line(rows) + '\n' + train_time_line(rows)
    save_grid(nets, osp.join(workdir, 'results', 'slkd_demo_grid.png'))
    with open(osp.join(workdir, 'results', 'slkd_demo_table.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    with open(osp.join(workdir, 'results', 'slkd_demo_table.md'), 'w') as f:
        f.write(table + '\n')
    print(f'\nHeld-out scikit-image photos (coffee, camera; {HELD_OUT_DRAWS} rain draws each; teacher B on the clean '
          f"photos: {rows['teacher B']['psnr']:.2f} dB clean->clean); both students: seed {args.seed}, "
          f'{args.student_iters} iterations; latency: 1 x 3 x 256 x 256, 2 CPU threads.')
    print(table)
    print(f"\nGrid: {osp.join(workdir, 'results', 'slkd_demo_grid.png')}")


if __name__ == '__main__':
    sys.exit(main())
