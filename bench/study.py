"""Controlled distillation study: SLKD, its ablations and two baselines on synthetic deraining and denoising.

Run from a clone with the package installed::

    python bench/study.py           # 2 tasks x 7 student configurations x 3 seeds: ~47 min, idle 2-core CPU
    python bench/study.py --quick   # 40 iterations, one seed, weaker teachers: a smoke run, a few minutes

Every run trains through BasicSR's pipeline (``python -m slkd_basicsr.train -opt <yml>``, one subprocess each)
with the pieces of ``slkd-demo`` (:mod:`slkd_basicsr.recipes`): the tiny Restormer teacher and student, scikit-image
photos degraded on the fly (8 for training, 64 px patches, batch 4; coffee and camera held out, degraded the
same way in every run), Adam at 2e-3 with cosine decay over the same fixed number of iterations for every arm.

Per task, Teacher A (degraded -> clean) is trained once and shared by all arms; the shipped demo Teacher A is
reused for deraining when the study asks for exactly its recipe (``--teacher-iters 2000``). Teacher B is
fine-tuned clean -> clean from Teacher A, as in the demo. The student arms (``ARMS``) differ only in the
distillation losses of ``SLKDModel``.
PSNR/SSIM (RGB, no border crop) of every run on the held-out photos are summarised as mean and sample standard
deviation over seeds. Writes ``study.json``, ``study.png`` and ``study_logs/`` (BasicSR's train log of each run
without its option and network dumps) to ``--out`` (``bench/results``; with ``--quick``, ``<workdir>/results``
so that a smoke run never replaces the recorded study).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from glob import glob
from os import path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

# One thread per run (set before torch loads OpenMP; the training subprocesses inherit it). Measured on 2 cores per
# iteration of all six arms: 1.4 s with one thread, 1.0 s with two when the machine is idle, but 2.8 s vs 10.4 s
# when two other busy processes share it (spinning OpenMP threads; passive waiting was slower in both cases).
os.environ.setdefault('OMP_NUM_THREADS', '1')

import torch  # noqa: E402

from _common import RESULTS, machine_record  # noqa: E402
from slkd_basicsr import compat  # noqa: E402
from slkd_basicsr.recipes import demo_recipe as recipe  # noqa: E402
from slkd_basicsr.recipes import runs  # noqa: E402
from slkd_basicsr.recipes.evaluation import load_net, restoration_scores  # noqa: E402
from slkd_basicsr.utils import flush_denormals  # noqa: E402

TASKS = {
    'derain': recipe.RAIN,
    'denoise': [{'type': 'noise', 'sigma': [10, 40]}],
}
METRICS = {name: recipe.METRICS[name] for name in ('psnr', 'ssim')}
# output-only distillation: BasicSR's L1Loss(pred, target) as the KD term, at SLKD's output-term weight
OUTPUT_KD = {'kd_opt': {'type': 'L1Loss', 'loss_weight': 0.5, 'reduction': 'mean'}}


# the ablations of an extractor keep its taps, SCM and weight but compare the raw maps
PLAIN_FEATURES = {'type': 'FeatureL1Loss', 'loss_weight': 0.1}


def slkd_without(*losses: str) -> Dict[str, Dict[str, Any]]:
    """SLKD's distillation losses (``recipe.SLKD_LOSSES``) less ``losses``."""
    return {key: opt for key, opt in recipe.SLKD_LOSSES.items() if key not in losses}


# arm -> (label, distillation losses of SLKDModel on top of L1 to the GT); none at all is exactly SRModel
ARMS: Dict[str, Tuple[str, Dict[str, Dict[str, Any]]]] = {
    'student': ('student alone', {}),
    'output_kd': ('output KD (L1 to teacher A)', OUTPUT_KD),
    'slkd': ('SLKD', slkd_without()),
    'no_drl': ('SLKD w/o DRL', slkd_without('nc_opt')),
    'no_irl': ('SLKD w/o IRL', slkd_without('et_opt')),
    'no_nc': ('SLKD w/o L_NC', {**slkd_without(), 'nc_opt': PLAIN_FEATURES}),
    'no_et': ('SLKD w/o L_ET', {**slkd_without(), 'et_opt': PLAIN_FEATURES}),
}
PROFILES = {
    'full': {'iters': 200, 'seeds': [0, 1, 2], 'teacher_iters': recipe.ASSET_TEACHER_A_ITERS, 'teacher_b_iters': 100},
    'quick': {'iters': 40, 'seeds': [0], 'teacher_iters': 150, 'teacher_b_iters': 20},
}
# records of a BasicSR log whose continuation lines are kept; other records keep their first line only, which
# drops the environment, option and network dumps
KEEP_BODY = ('Training statistics', 'Validation')
RECORD_START = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ')


def summarise_log(log: str) -> str:
    """BasicSR's train log without the bodies of its multi-line records (environment, options, network)."""
    kept = []
    keep_body = False
    for line in log.splitlines():
        if RECORD_START.match(line):
            keep_body = any(word in line for word in KEEP_BODY)
            if line.split('INFO:', 1)[-1].strip():
                kept.append(line)
        elif keep_body and line.strip():
            kept.append(line)
    return '\n'.join(kept) + '\n'


def train(opt: Dict[str, Any], workdir: str, logs: str) -> Tuple[str, Dict[str, Any]]:
    """Train ``opt`` (quietly), keep its log summary in ``logs``; return net_g_latest and the run's record."""
    start = time.perf_counter()
    net_path = runs.train(opt, workdir, quiet=True)
    train_s = time.perf_counter() - start
    experiment = osp.dirname(osp.dirname(net_path))  # <experiment>/models/net_g_latest.pth
    with open(sorted(glob(osp.join(experiment, 'train_*.log')))[-1]) as f:
        summary = summarise_log(f.read())
    log_name = f"{opt['name']}.log"
    with open(osp.join(logs, log_name), 'w') as f:
        f.write(summary)
    return net_path, {'iters': opt['train']['total_iter'], 'train_s': round(train_s, 1),
                      'log': f'{osp.basename(logs)}/{log_name}'}


def teachers(task: str, profile: Dict[str, Any], need_b: bool, workdir: str,
             logs: str) -> Tuple[Dict[str, Optional[str]], Dict[str, Any]]:
    """Teacher A (shipped or trained) and, if an arm needs it, Teacher B of ``task``: checkpoints and records."""
    if TASKS[task] == recipe.RAIN and profile['teacher_iters'] == recipe.ASSET_TEACHER_A_ITERS:
        path_a = recipe.ASSET_TEACHER_A
        record_a = {'iters': profile['teacher_iters'], 'source': 'shipped slkd_basicsr/assets/demo_teacher_a.pth '
                    f'(slkd-demo --train-teacher-a {recipe.ASSET_TEACHER_A_ITERS}: the same recipe)'}
    else:
        opt = recipe.teacher_a_options(profile['teacher_iters'], TASKS[task], name=f'study_{task}_teacher_a')
        path_a, record_a = train(opt, workdir, logs)
    paths = {'teacher_a': path_a, 'teacher_b': None}
    records = {'teacher_a': record_a}
    if need_b:
        opt = recipe.teacher_b_options(profile['teacher_b_iters'], path_a, name=f'study_{task}_teacher_b')
        paths['teacher_b'], records['teacher_b'] = train(opt, workdir, logs)
    return paths, records


def student_options(task: str, arm: str, seed: int, iters: int, paths: Dict[str, Optional[str]]) -> Dict[str, Any]:
    """The demo's SLKD options with the arm's distillation losses and the seed."""
    opt = recipe.slkd_options(iters, paths['teacher_a'], paths['teacher_b'], TASKS[task],
                              name=f'study_{task}_{arm}_s{seed}')
    for key in recipe.SLKD_LOSSES:
        opt['train'].pop(key)
    opt['train'].update(ARMS[arm][1])
    opt['manual_seed'] = seed
    opt['distill'] = {'log_complexity': False}  # the study compares quality; complexity is bench/complexity.py's
    return opt


def scores(net: torch.nn.Module, task: str) -> Dict[str, float]:
    """PSNR/SSIM of ``net`` on the held-out photos with the task's (fixed) degradations."""
    return restoration_scores(net, TASKS[task], METRICS)


def mean_std(values: List[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (None with fewer than two values)."""
    return {'mean': statistics.mean(values), 'std': statistics.stdev(values) if len(values) > 1 else None}


def run_task(task: str, arms: Sequence[str], profile: Dict[str, Any], workdir: str, logs: str,
             progress: List[int]) -> Dict[str, Any]:
    """Teachers, references and every arm x seed of one task; ``progress`` is [runs done, runs in all]."""
    need_b = any('et_opt' in ARMS[arm][1] for arm in arms)
    paths, teacher_records = teachers(task, profile, need_b, workdir, logs)
    record: Dict[str, Any] = {
        'train_dataset': recipe.dataset_options('train', TASKS[task]),
        'held_out_dataset': recipe.dataset_options('val', TASKS[task]),
        'teachers': teacher_records,
        'references': {'degraded input': scores(torch.nn.Identity(), task),
                       'teacher A': scores(load_net(recipe.TEACHER, paths['teacher_a']), task)},
        'arms': {},
    }
    for seed in profile['seeds']:
        for arm in arms:
            net_path, run = train(student_options(task, arm, seed, profile['iters'], paths), workdir, logs)
            run.update(seed=seed, **scores(load_net(recipe.STUDENT, net_path), task))
            progress[0] += 1
            print(f"[{progress[0]}/{progress[1]}] {task} {arm} seed {seed}: PSNR {run['psnr']:.2f} "
                  f"SSIM {run['ssim']:.4f} (trained in {run['train_s']:.0f} s)", flush=True)
            label, losses = ARMS[arm]
            entry = record['arms'].setdefault(arm, {'label': label, 'losses': losses, 'runs': []})
            entry['runs'].append(run)
    for entry in record['arms'].values():
        entry.update({metric: mean_std([run[metric] for run in entry['runs']]) for metric in METRICS})
    return {**record, 'arms': {arm: record['arms'][arm] for arm in arms}}


def cell(summary: Dict[str, Optional[float]], digits: int) -> str:
    """``mean ± std``, or the mean alone without a std."""
    std = summary['std']
    return f"{summary['mean']:.{digits}f}" + (f' ± {std:.{digits}f}' if std is not None else '')


def format_table(tasks: Dict[str, Dict[str, Any]]) -> str:
    """Markdown table: one row per reference and arm, PSNR and SSIM (mean ± std over seeds) per task."""
    names = list(tasks)
    lines = ['| arm | ' + ' | '.join(f'{task} PSNR | {task} SSIM' for task in names) + ' |',
             '|---|' + '---|' * (2 * len(names))]
    first = tasks[names[0]]
    for ref in first['references']:
        row = [cell({'mean': tasks[task]['references'][ref][m], 'std': None}, d) for task in names
               for m, d in (('psnr', 2), ('ssim', 4))]
        lines.append(f'| {ref} | ' + ' | '.join(row) + ' |')
    for arm, entry in first['arms'].items():
        row = [cell(tasks[task]['arms'][arm][m], d) for task in names for m, d in (('psnr', 2), ('ssim', 4))]
        lines.append(f'| {entry["label"]} | ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def plot(tasks: Dict[str, Dict[str, Any]], path: str, title: str) -> None:
    """One panel per task and metric: a bar per arm (mean, std as error bar), Teacher A as a dashed line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metrics = (('psnr', 'PSNR (dB)', '.2f'), ('ssim', 'SSIM', '.3f'))
    fig, axes = plt.subplots(len(metrics), len(tasks), figsize=(6 * len(tasks), 8), squeeze=False)
    for col, (task, record) in enumerate(tasks.items()):
        arms = list(record['arms'].values())
        for row, (metric, name, fmt) in enumerate(metrics):
            ax = axes[row][col]
            means = [arm[metric]['mean'] for arm in arms]
            stds = [arm[metric]['std'] or 0.0 for arm in arms]
            ax.bar(range(len(arms)), means, yerr=stds, capsize=3, color='#dd8452')
            for x, (mean, std) in enumerate(zip(means, stds)):
                ax.annotate(format(mean, fmt), (x, mean + std), xytext=(0, 2), textcoords='offset points',
                            ha='center', va='bottom', fontsize=7)
            teacher = record['references']['teacher A'][metric]
            ax.axhline(teacher, color='#4c72b0', linestyle='--', label=f'teacher A ({teacher:{fmt}})')
            low = min(m - s for m, s in zip(means, stds))
            high = max(teacher, *(m + s for m, s in zip(means, stds)))
            ax.set_ylim(low - 0.3 * (high - low), high + 0.15 * (high - low))
            ax.set_xticks(range(len(arms)))
            ax.set_xticklabels([arm['label'] for arm in arms], rotation=25, ha='right', fontsize=8)
            ax.set_title(f'{task}: {name}')
            ax.legend(fontsize=8, loc='lower right')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def defaults(key: str) -> str:
    return f"default {PROFILES['full'][key]}; --quick: {PROFILES['quick'][key]}"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke run (the --quick defaults below)')
    parser.add_argument('--seeds', type=int, nargs='+', help=f"training seeds ({defaults('seeds')})")
    parser.add_argument('--iters', type=int, help=f"iterations of every student run ({defaults('iters')})")
    parser.add_argument('--teacher-iters', type=int,
                        help=f"iterations of Teacher A ({defaults('teacher_iters')}); with "
                        f'{recipe.ASSET_TEACHER_A_ITERS} the shipped deraining teacher is reused')
    parser.add_argument('--teacher-b-iters', type=int,
                        help=f"clean->clean fine-tuning of Teacher B ({defaults('teacher_b_iters')})")
    parser.add_argument('--tasks', nargs='+', choices=list(TASKS), default=list(TASKS))
    parser.add_argument('--arms', nargs='+', choices=list(ARMS), default=list(ARMS))
    parser.add_argument('--workdir', default=osp.join(RESULTS, 'tmp', 'study'),
                        help='option files and BasicSR experiments (default: git-ignored bench/results/tmp/study)')
    parser.add_argument('--out', help='folder for study.json, study.png, study_logs/ (default: bench/results; '
                        'with --quick: <workdir>/results)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    compat.apply()
    flush_denormals()  # the held-out scoring runs in this process, as slkd-train's runs flush theirs
    profile = dict(PROFILES['quick' if args.quick else 'full'])
    profile.update({key: getattr(args, key) for key in profile if getattr(args, key) is not None})
    workdir = osp.abspath(args.workdir)
    out = osp.abspath(args.out or (osp.join(workdir, 'results') if args.quick else RESULTS))
    logs = osp.join(out, 'study_logs')
    shutil.rmtree(logs, ignore_errors=True)  # the logs always belong to the study.json beside them
    os.makedirs(logs)

    load_before = os.getloadavg()
    start = time.perf_counter()
    progress = [0, len(args.tasks) * len(args.arms) * len(profile['seeds'])]
    tasks = {task: run_task(task, args.arms, profile, workdir, logs, progress) for task in args.tasks}
    wall_s = time.perf_counter() - start
    no_teachers = {'teacher_a': None, 'teacher_b': None}  # only the training schedule is read
    student_train = student_options(args.tasks[0], args.arms[0], 0, profile['iters'], no_teachers)['train']

    result = {
        'command': 'python bench/study.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        'profile': profile,
        'setup': {
            'teacher': recipe.TEACHER, 'student': recipe.STUDENT,
            'student_train': {key: student_train[key] for key in ('total_iter', 'optim_g', 'scheduler', 'pixel_opt')},
            'metrics': METRICS, 'std': 'sample standard deviation over seeds (null with one seed)',
        },
        'tasks': tasks,
        'wall_s': round(wall_s, 1),
        'machine': machine_record(load_before),
    }
    with open(osp.join(out, 'study.json'), 'w') as f:
        json.dump(result, f, indent=2)
    seeds = ('seeds ' if len(profile['seeds']) > 1 else 'seed ') + ', '.join(map(str, profile['seeds']))
    plot(tasks, osp.join(out, 'study.png'), f"{profile['iters']} iterations per student run, {seeds}; "
         'held-out coffee and camera')
    print(f"\nHeld-out photos (coffee, camera); {profile['iters']} iterations per student run; mean ± std over "
          f'{seeds}; {wall_s / 60:.1f} min in all.')
    print(format_table(tasks))
    print(f'\nwrote {out}/study.json, study.png and study_logs/')


if __name__ == '__main__':
    main()
