"""Paired distillation study: SLKD, its ablations, output-only KD and the student alone, derain and denoise.

Run from a clone with the package installed::

    python bench/study.py                 # the whole study, resumable: about 1 h on 2 idle cores (--jobs 2)
    python bench/study.py --max-runs 10   # at most 10 new runs now, then the summary of every finished run
    python bench/study.py --quick         # 40 iterations, one seed, main arms: a smoke run under 10 minutes

Every run trains through BasicSR's pipeline (``python -m slkd_basicsr.tools.train -opt <yml>``, one single-thread
subprocess each, ``--jobs`` at a time) with the pieces of ``slkd-demo`` (:mod:`slkd_basicsr.recipes`): the tiny
Restormer teachers and the student with 12% of their parameters, 8 scikit-image photos degraded on the fly (64 px
patches, batch 4), Adam at 2e-3 with cosine decay over the same number of iterations for every arm.

**Arms.** ``slkd`` is SLKD at the papers' weights (``recipe.PAPER_LOSSES``: 0.5 / 0.1 / 0.1), which the
ablations and ``slkd_anneal`` start from; ``slkd_light`` has the recipe's default weights (``recipe.SLKD_LOSSES``:
L_NC and L_ET at 0.02), compared with the papers' weights under ``default_vs_paper`` in ``study.json``. The cost
arms (derain) keep those weights and cut what the teachers cost (``distill.teacher_batch``, ``distill.every``,
``distill.teacher_amp``, ``distill.teacher_crop``); they are compared with ``slkd_light`` under
``cheap_vs_default``. ``tb1_crop_3q``, the teachers on 1 of the 4 samples of a batch cropped to 3/4 of each side,
is the recipe's default since (``recipe.SLKD_DISTILL``; ``tb1`` before it).

**Paired by seed.** All arms of one seed start from the same student weights and see the same batches and the
same degradations (``SLKDModel`` builds its teachers and SCM with the global random state forked and draws its
feature channels from a generator of its own), so arm - student differences per seed remove most of the
seed-to-seed variance; they are summarised as a mean with a 95% t confidence interval over seeds.

**Learning curve in one run.** Each run saves the student every ``--val-every`` iterations; every checkpoint is
scored on the held-out set (coffee and camera at half size, 4 degradation draws each, the same in every run).

**Teachers** are the shipped assets (``slkd_basicsr/assets``: Teacher A per task trained 2000 iterations from
scratch, Teacher B 1000 iterations clean->clean from scratch; ``slkd-demo --train-teacher-a/-b`` shows the
recipes); their held-out PSNRs are recorded.

**Resumable.** Each finished run writes ``study_runs/<run>.json`` (scores per budget, gradient shares, teacher
checks, wall time, a digest of its options) and ``study_logs/<run>.log`` under ``--out`` at once; a rerun skips
runs whose record is there with the same digest, so a study is completed over several sessions. The summary
(``study.json``, ``study.png``) is rewritten from every finished run after each invocation.
"""
import argparse
import copy
import functools
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from glob import glob
from os import path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

# One thread per run (set before torch loads OpenMP; the training subprocesses inherit it): two single-thread
# runs side by side use both cores of the 2-core machine without oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import torch  # noqa: E402

from _common import RESULTS, machine_record  # noqa: E402
from slkd_basicsr.compat.checkpoints import load_network  # noqa: E402
from slkd_basicsr.recipes import demo_recipe as recipe  # noqa: E402
from slkd_basicsr.recipes import runs  # noqa: E402
from slkd_basicsr.recipes.evaluation import restoration_scores  # noqa: E402
from slkd_basicsr.tools.process import flush_denormals, prepare_basicsr  # noqa: E402

TASKS = {'derain': recipe.RAIN, 'denoise': recipe.NOISE}
TEACHER_A = {'derain': recipe.ASSET_TEACHER_A, 'denoise': recipe.ASSET_TEACHER_A_DENOISE}
METRICS = {name: recipe.METRICS[name] for name in ('psnr', 'ssim')}
# output-only distillation: BasicSR's L1Loss(pred, target) as the KD term, at SLKD's output-term weight
OUTPUT_KD = {'kd_opt': {'type': 'L1Loss', 'loss_weight': 0.5, 'reduction': 'mean'}}
# the ablations of an extractor keep its taps, SCM and weight but compare the raw maps
PLAIN_FEATURES = {'type': 'FeatureL1Loss', 'loss_weight': 0.1}


def slkd_without(*losses: str) -> Dict[str, Dict[str, Any]]:
    """The papers' distillation losses (``recipe.PAPER_LOSSES``) less ``losses``."""
    return {key: opt for key, opt in recipe.PAPER_LOSSES.items() if key not in losses}


# arm -> (label, distillation losses of SLKDModel on top of L1 to the GT); none at all is exactly SRModel
ARMS: Dict[str, Tuple[str, Dict[str, Dict[str, Any]]]] = {
    'student': ('student alone', {}),
    'output_kd': ('output KD (L1 to teacher A)', OUTPUT_KD),
    'slkd': ('SLKD, paper weights', slkd_without()),
    'slkd_anneal': ('SLKD, paper weights, annealed', slkd_without()),
    'slkd_light': ('SLKD, L_NC, L_ET at 0.02, teachers on the whole batch', recipe.SLKD_LOSSES),
    'no_drl': ('SLKD w/o DRL', slkd_without('nc_opt')),
    'no_irl': ('SLKD w/o IRL', slkd_without('et_opt')),
    'no_nc': ('SLKD w/o L_NC', {**slkd_without(), 'nc_opt': PLAIN_FEATURES}),
    'no_et': ('SLKD w/o L_ET', {**slkd_without(), 'et_opt': PLAIN_FEATURES}),
    'no_kl': ('SLKD w/o L_KL', slkd_without('kd_opt')),
    'tb1': ('SLKD, teachers on 1 of 4 samples', recipe.SLKD_LOSSES),
    'tb2': ('SLKD, teachers on 2 of 4 samples', recipe.SLKD_LOSSES),
    'tb1_bf16': ('SLKD, teachers on 1 of 4 samples in bf16', recipe.SLKD_LOSSES),
    'tb1_every2': ('SLKD, teachers on 1 of 4 samples, every 2nd it', recipe.SLKD_LOSSES),
    'tb1_every4': ('SLKD, teachers on 1 of 4 samples, every 4th it', recipe.SLKD_LOSSES),
    'tb1_crop_half': ('SLKD, teachers on a half-side crop of 1 of 4 samples', recipe.SLKD_LOSSES),
    'tb1_crop_3q': ('SLKD default: teachers on a 3/4-side crop of 1 of 4 samples', recipe.SLKD_LOSSES),
    'tb1_crop_3q_bf16': ('SLKD, teachers on a 3/4-side crop of 1 of 4 samples in bf16', recipe.SLKD_LOSSES),
}
# the cost arms: slkd_light's losses with SLKDModel's options that cut what the teachers and extractors cost,
# compared with slkd_light under cheap_vs_default; tb1_crop_3q (recipe.SLKD_DISTILL: a quarter of each batch of 4,
# cropped to 3/4 of each side) is the default since, tb1 before it. tb1_every2 / tb1_every4 stopped after 2 / 1
# seeds, clearly behind (a rerun completes them)
ARM_DISTILL = {
    'tb1': {'teacher_batch': 1},
    'tb2': {'teacher_batch': 2},
    'tb1_bf16': {'teacher_batch': 1, 'teacher_amp': 'bf16'},
    'tb1_every2': {'teacher_batch': 1, 'every': 2},
    'tb1_every4': {'teacher_batch': 1, 'every': 4},
    'tb1_crop_half': {'teacher_batch': 1, 'teacher_crop': 0.5},
    'tb1_crop_3q': {'teacher_batch': 1, 'teacher_crop': 0.75},
    'tb1_crop_3q_bf16': {'teacher_batch': 1, 'teacher_crop': 0.75, 'teacher_amp': 'bf16'},
}
COST_ARMS = list(ARM_DISTILL)
MAIN_ARMS = ['student', 'output_kd', 'slkd', 'slkd_anneal', 'slkd_light']
# the recipe's default loss weights (recipe.SLKD_LOSSES) and the papers' (recipe.PAPER_LOSSES)
DEFAULT_ARM, PAPER_ARM = 'slkd_light', 'slkd'
# arms whose distillation terms fade out over the run (distill.anneal_iters = the run's iterations)
ANNEALED_ARMS = ['slkd_anneal']
ABLATION_ARMS = ['no_drl', 'no_irl', 'no_nc', 'no_et', 'no_kl']
PROFILES = {
    'full': {'iters': 1000, 'val_every': 250, 'seeds': [0, 1, 2, 3, 4], 'ablation_seeds': [0, 1, 2],
             'tasks': list(TASKS), 'ablation_tasks': ['denoise'], 'cost_tasks': ['derain']},
    'quick': {'iters': 40, 'val_every': 20, 'seeds': [0], 'ablation_seeds': [], 'tasks': list(TASKS),
              'ablation_tasks': [], 'cost_tasks': []},
}
# records of a BasicSR log whose continuation lines are kept; other records keep their first line only, which
# drops the environment, option and network dumps
KEEP_BODY = ('Training statistics', 'Validation')
RECORD_START = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ')
SHARE = re.compile(r'(share_l_\w+): ([-+0-9.e]+)')
TEACHER_CHECK = re.compile(r'Teacher check: (teacher [AB]) .*?PSNR ([-0-9.]+) dB')


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


def parse_log(log: str) -> Dict[str, Any]:
    """Mean gradient share of each term over the logged iterations, and the teacher checks' PSNRs."""
    shares: Dict[str, List[float]] = {}
    for name, value in SHARE.findall(log):
        shares.setdefault(name[len('share_'):], []).append(float(value))
    return {'grad_shares': {name: statistics.mean(values) for name, values in shares.items()},
            'teacher_checks': {who: float(psnr) for who, psnr in TEACHER_CHECK.findall(log)}}


def run_name(task: str, arm: str, seed: int) -> str:
    return f'study_{task}_{arm}_s{seed}'


def student_options(task: str, arm: str, seed: int, profile: Dict[str, Any]) -> Dict[str, Any]:
    """The demo's SLKD options with the arm's distillation losses, the seed and a checkpoint per budget."""
    opt = recipe.slkd_options(profile['iters'], TEACHER_A[task], recipe.ASSET_TEACHER_B, TASKS[task], seed,
                              name=run_name(task, arm, seed))
    for key in recipe.SLKD_LOSSES:
        opt['train'].pop(key)
    opt['train'].update(copy.deepcopy(ARMS[arm][1]))
    # the study compares quality (complexity is bench/complexity.py's); shares on for every arm with a teacher
    opt['distill'] = {'log_complexity': False, 'log_grad_shares': True}
    if arm in ANNEALED_ARMS:
        opt['distill']['anneal_iters'] = profile['iters']
    opt['distill'].update(ARM_DISTILL.get(arm, {}))
    opt['logger'].update(print_freq=profile['val_every'] // 2, save_checkpoint_freq=profile['val_every'])
    return opt


@functools.lru_cache(maxsize=None)
def file_sha256(path: str) -> str:
    """Content hash of a checkpoint, read once per study (every run of a task shares its teachers)."""
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def digest(opt: Dict[str, Any]) -> str:
    """What identifies a run's result: its options (the teachers' checkpoints by content, not by path)."""
    ident = json.loads(json.dumps(opt))
    for key in ('pretrain_network_teacher_a', 'pretrain_network_teacher_b'):
        path = ident['path'].get(key)
        if path:
            ident['path'][key] = file_sha256(path)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def scores(net: torch.nn.Module, degradations: List[Dict[str, Any]]) -> Dict[str, float]:
    """PSNR/SSIM of ``net`` on the held-out photos with ``degradations`` (the same draws on every call)."""
    return restoration_scores(net, degradations, METRICS)


def train_run(task: str, arm: str, seed: int, profile: Dict[str, Any], workdir: str, out: str) -> Dict[str, Any]:
    """Train one run, score each of its checkpoints, write its record and log summary; return the record."""
    opt = student_options(task, arm, seed, profile)
    start = time.perf_counter()
    latest = runs.train(opt, workdir, quiet=True)
    train_s = time.perf_counter() - start
    experiment = osp.dirname(osp.dirname(latest))  # <experiment>/models/net_g_latest.pth
    with open(sorted(glob(osp.join(experiment, 'train_*.log')))[-1]) as f:
        log = f.read()
    budgets = list(range(profile['val_every'], profile['iters'] + 1, profile['val_every']))
    curve = {str(it): scores(load_network(recipe.STUDENT, osp.join(experiment, 'models', f'net_g_{it}.pth')),
                             TASKS[task]) for it in budgets}
    record = {'task': task, 'arm': arm, 'seed': seed, 'iters': profile['iters'], 'digest': digest(opt),
              'curve': curve, **parse_log(log), 'train_s': round(train_s, 1),
              'log': f'study_logs/{opt["name"]}.log'}
    with open(osp.join(out, record['log']), 'w') as f:
        f.write(summarise_log(log))
    path = osp.join(out, 'study_runs', f"{opt['name']}.json")
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(path + '.tmp', path)
    return record


def planned_runs(profile: Dict[str, Any], tasks: Sequence[str], arms: Sequence[str]) -> List[Tuple[str, str, int]]:
    """(task, arm, seed) in the order that completes whole seeds first: main arms, then the ablations, then the
    cost arms (with the main arms' seeds)."""
    plan = [(task, arm, seed) for seed in profile['seeds'] for task in tasks for arm in arms if arm in MAIN_ARMS]
    plan += [(task, arm, seed) for seed in profile['ablation_seeds'] for task in tasks
             if task in profile['ablation_tasks'] for arm in arms if arm in ABLATION_ARMS]
    plan += [(task, arm, seed) for seed in profile['seeds'] for task in tasks
             if task in profile.get('cost_tasks', []) for arm in arms if arm in COST_ARMS]
    return plan


def cached(task: str, arm: str, seed: int, profile: Dict[str, Any], out: str) -> Optional[Dict[str, Any]]:
    """The record of a finished run with exactly these options, or None."""
    path = osp.join(out, 'study_runs', f'{run_name(task, arm, seed)}.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record if record.get('digest') == digest(student_options(task, arm, seed, profile)) else None


def t_interval(diffs: List[float]) -> Optional[List[float]]:
    """95% t confidence interval of the mean of ``diffs`` (None with fewer than two)."""
    if len(diffs) < 2:
        return None
    from scipy import stats

    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    mean = statistics.mean(diffs)
    return [round(mean - half, 3), round(mean + half, 3)]


def paired(records: Dict[Tuple[str, str, int], Dict[str, Any]], task: str, arm: str, vs: str,
           iters: str) -> Optional[Dict[str, Any]]:
    """PSNR of ``arm`` minus ``vs`` per seed at ``iters``, over the seeds both have finished."""
    seeds = sorted(seed for (t, a, seed) in records if t == task and a == arm and (task, vs, seed) in records)
    diffs = [records[task, arm, s]['curve'][iters]['psnr'] - records[task, vs, s]['curve'][iters]['psnr']
             for s in seeds]
    if not diffs:
        return None
    return {'vs': vs, 'metric': 'psnr', 'iters': int(iters), 'mean_db': round(statistics.mean(diffs), 3),
            'ci95': t_interval(diffs), 'n_seeds': len(diffs), 'per_seed_db': [round(d, 3) for d in diffs]}


def summarise(records: Dict[Tuple[str, str, int], Dict[str, Any]], profile: Dict[str, Any],
              teachers: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Per task: teachers, each arm's curve (mean over seeds), grad shares; paired differences vs the student."""
    budgets = [str(it) for it in range(profile['val_every'], profile['iters'] + 1, profile['val_every'])]
    last = budgets[-1]
    result: Dict[str, Any] = {'tasks': {}, 'paired': {}, 'paired_by_iters': {}, 'slkd_vs_output_kd': {},
                              'default_vs_paper': {}, 'cheap_vs_default': {}}
    slkd_arms = [arm for arm in MAIN_ARMS if arm not in ('student', 'output_kd')]
    comparisons = (('paired', 'student', list(ARMS)), ('slkd_vs_output_kd', 'output_kd', slkd_arms),
                   ('default_vs_paper', PAPER_ARM, [DEFAULT_ARM]), ('cheap_vs_default', DEFAULT_ARM, COST_ARMS))
    for task in teachers:
        arms = {}
        for arm in ARMS:
            runs_ = [r for (t, a, _), r in sorted(records.items()) if t == task and a == arm]
            if not runs_:
                continue
            shares = {name: statistics.mean(r['grad_shares'][name] for r in runs_)
                      for name in runs_[0]['grad_shares']}
            arms[arm] = {'label': ARMS[arm][0], 'losses': ARMS[arm][1], 'seeds': [r['seed'] for r in runs_],
                         'curve': {it: {m: statistics.mean(r['curve'][it][m] for r in runs_) for m in METRICS}
                                   for it in budgets},
                         'grad_shares': shares, 'train_s': [r['train_s'] for r in runs_]}
        result['tasks'][task] = {'teachers': teachers[task], 'arms': arms}
        for key, vs, arm_list in comparisons:
            for arm in arm_list:
                if arm == vs:
                    continue
                entry = paired(records, task, arm, vs, last)
                if entry:
                    result[key].setdefault(task, {})[arm] = entry
                if key == 'paired':
                    by_iters = {it: paired(records, task, arm, vs, it) for it in budgets}
                    if any(by_iters.values()):
                        result['paired_by_iters'].setdefault(task, {})[arm] = by_iters
    return result


def teacher_record(task: str) -> Dict[str, Any]:
    """Held-out PSNR/SSIM of the task's input, Teacher A and (clean->clean) Teacher B."""
    return {
        'degraded input': scores(torch.nn.Identity(), TASKS[task]),
        'teacher A': {**scores(load_network(recipe.TEACHER, TEACHER_A[task]), TASKS[task]),
                      'checkpoint': osp.relpath(TEACHER_A[task], osp.dirname(osp.dirname(recipe.ASSETS))),
                      'iters': recipe.ASSET_TEACHER_A_ITERS},
        'teacher B (clean->clean)': {**scores(load_network(recipe.TEACHER_B, recipe.ASSET_TEACHER_B), []),
                                     'checkpoint': osp.relpath(recipe.ASSET_TEACHER_B,
                                                               osp.dirname(osp.dirname(recipe.ASSETS))),
                                     'iters': recipe.ASSET_TEACHER_B_ITERS},
    }


def format_table(summary: Dict[str, Any]) -> str:
    """Markdown: per task, each arm's paired PSNR difference vs the student alone at the largest budget."""
    header = ' | '.join(f'{task}: Δ PSNR vs student alone (dB, 95% CI, seeds)' for task in summary['tasks'])
    lines = [f'| arm | {header} |', '|---|' + '---|' * len(summary['tasks'])]
    for arm in ARMS:
        cells = []
        for task in summary['tasks']:
            entry = summary['paired'].get(task, {}).get(arm)
            if arm == 'student' and arm in summary['tasks'][task]['arms']:
                curve = summary['tasks'][task]['arms'][arm]['curve']
                cells.append(f"{curve[max(curve, key=int)]['psnr']:.2f} dB (reference)")
            elif entry is None:
                cells.append('-')
            else:
                ci = entry['ci95']
                ci_text = f' [{ci[0]:+.2f}, {ci[1]:+.2f}]' if ci else ''
                cells.append(f"{entry['mean_db']:+.2f}{ci_text}, n={entry['n_seeds']}")
        if any(c != '-' for c in cells):
            lines.append(f'| {ARMS[arm][0]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_budget_table(summary: Dict[str, Any], task: str) -> str:
    """Markdown: each arm's paired PSNR difference vs the student alone at every budget of ``task``."""
    by_iters = summary['paired_by_iters'].get(task, {})
    budgets = sorted({it for entries in by_iters.values() for it in entries}, key=int)
    lines = [f'| {task}: arm | ' + ' | '.join(f'{it} it' for it in budgets) + ' |', '|---|' + '---|' * len(budgets)]
    for arm, entries in by_iters.items():
        cells = []
        for it in budgets:
            entry = entries.get(it)
            ci = entry['ci95'] if entry else None
            cells.append('-' if entry is None else f"{entry['mean_db']:+.2f}" +
                         (f' [{ci[0]:+.2f}, {ci[1]:+.2f}]' if ci else ''))
        lines.append(f'| {ARMS[arm][0]} (n={max(e["n_seeds"] for e in entries.values() if e)}) | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_comparisons(summary: Dict[str, Any]) -> str:
    """One line per SLKD arm vs output KD and per default vs paper weights, at the largest budget."""
    lines = []
    for key in ('slkd_vs_output_kd', 'default_vs_paper', 'cheap_vs_default'):
        for task, entries in summary[key].items():
            for arm, entry in entries.items():
                ci = entry['ci95']
                ci_text = f' [{ci[0]:+.2f}, {ci[1]:+.2f}]' if ci else ''
                lines.append(f"{task}: {ARMS[arm][0]} - {ARMS[entry['vs']][0]}: {entry['mean_db']:+.2f} dB"
                             f"{ci_text}, n={entry['n_seeds']}")
    return '\n'.join(lines)


def plot(summary: Dict[str, Any], path: str, title: str) -> None:
    """Per task: the learning curve of each arm (mean PSNR over seeds) with Teacher A, and the paired gains."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    tasks = summary['tasks']
    fig, axes = plt.subplots(2, len(tasks), figsize=(6.5 * len(tasks), 9), squeeze=False)
    for col, (task, record) in enumerate(tasks.items()):
        ax = axes[0][col]
        for arm, entry in record['arms'].items():
            its = sorted(entry['curve'], key=int)
            ax.plot([int(i) for i in its], [entry['curve'][i]['psnr'] for i in its], marker='o',
                    linestyle='-' if arm in MAIN_ARMS else ':', label=f"{entry['label']} (n={len(entry['seeds'])})")
        teacher = record['teachers']['teacher A']['psnr']
        ax.axhline(teacher, color='black', linestyle='--', label=f'teacher A ({teacher:.2f})')
        ax.set_title(f'{task}: held-out PSNR (dB), mean over seeds')
        ax.set_xlabel('iterations')
        ax.legend(fontsize=7)
        ax = axes[1][col]
        entries = summary['paired'].get(task, {})
        names = list(entries)
        means = [entries[a]['mean_db'] for a in names]
        errors = [[m - (entries[a]['ci95'] or [m, m])[0] for a, m in zip(names, means)],
                  [(entries[a]['ci95'] or [m, m])[1] - m for a, m in zip(names, means)]]
        ax.bar(range(len(names)), means, yerr=errors, capsize=3, color='#dd8452')
        ax.axhline(0, color='black', linewidth=0.8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([ARMS[a][0] for a in names], rotation=25, ha='right', fontsize=8)
        ax.set_title(f'{task}: paired PSNR gain vs student alone (95% CI)')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke run: 40 iterations, seed 0, main arms')
    parser.add_argument('--tasks', nargs='+', choices=list(TASKS), help='default: both')
    parser.add_argument('--arms', nargs='+', choices=list(ARMS), default=list(ARMS))
    parser.add_argument('--seeds', type=int, nargs='+', help='seeds of the main arms (default 0-4)')
    parser.add_argument('--ablation-seeds', type=int, nargs='+', help='seeds of the ablations (default 0-2)')
    parser.add_argument('--ablation-tasks', nargs='+', choices=list(TASKS),
                        help='tasks of the ablations (default denoise, where SLKD trails the student alone)')
    parser.add_argument('--cost-tasks', nargs='+', choices=list(TASKS),
                        help='tasks of the cost arms (default derain, where the default pays)')
    parser.add_argument('--iters', type=int, help='iterations of every run (default 1000)')
    parser.add_argument('--val-every', type=int, help='budgets scored along each run (default every 250)')
    parser.add_argument('--jobs', type=int, default=2, help='runs side by side, one thread each (default 2)')
    parser.add_argument('--max-runs', type=int, help='train at most this many new runs, then summarise')
    parser.add_argument('--workdir', default=osp.join(RESULTS, 'tmp', 'study'),
                        help='option files and BasicSR experiments (default: git-ignored bench/results/tmp/study)')
    parser.add_argument('--out', help='folder for study.json, study.png, study_runs/, study_logs/ (default: '
                        'bench/results; with --quick: <workdir>/results)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    prepare_basicsr()
    flush_denormals()  # the held-out scoring runs in this process, as slkd-train's runs flush theirs
    torch.set_num_threads(1)
    profile = dict(PROFILES['quick' if args.quick else 'full'])
    for key in ('tasks', 'seeds', 'ablation_seeds', 'ablation_tasks', 'cost_tasks', 'iters', 'val_every'):
        if getattr(args, key) is not None:
            profile[key] = getattr(args, key)
    workdir = osp.abspath(args.workdir)
    out = osp.abspath(args.out or (osp.join(workdir, 'results') if args.quick else RESULTS))
    for folder in ('study_runs', 'study_logs'):
        os.makedirs(osp.join(out, folder), exist_ok=True)

    plan = planned_runs(profile, profile['tasks'], args.arms)
    records = {key: cached(*key, profile, out) for key in plan}
    todo = [key for key in plan if records[key] is None][:args.max_runs]
    print(f'{len(plan)} runs planned, {len(plan) - sum(r is None for r in records.values())} finished before, '
          f'{len(todo)} to train now', flush=True)
    load_before = os.getloadavg()
    start = time.perf_counter()

    failed = []

    def one(key: Tuple[str, str, int]) -> None:
        try:
            records[key] = train_run(*key, profile, workdir, out)
        except subprocess.CalledProcessError:  # its output is printed; the other runs go on, a rerun retries it
            failed.append(run_name(*key))
            print(f'FAILED: {run_name(*key)}', flush=True)
            return
        done = sum(r is not None for r in records.values())
        last = records[key]['curve'][str(profile['iters'])]
        print(f'[{done}/{len(plan)}] {key[0]} {key[1]} seed {key[2]}: PSNR {last["psnr"]:.2f} '
              f"(trained in {records[key]['train_s']:.0f} s)", flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, todo))
    finished = {key: record for key, record in records.items() if record is not None}
    summary = summarise(finished, profile, {task: teacher_record(task) for task in profile['tasks']})
    result = {
        'command': 'python bench/study.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        'profile': profile,
        'setup': {'teacher': recipe.TEACHER, 'teacher_b': recipe.TEACHER_B, 'student': recipe.STUDENT,
                  'held_out': recipe.dataset_options('val', recipe.RAIN), 'metrics': METRICS,
                  'paired': 'arm minus student alone, same seed; mean and 95% t interval over seeds'},
        'runs_planned': len(plan), 'runs_finished': len(finished), 'runs_failed_this_invocation': failed,
        **summary,
        'train_s_all_runs': round(sum(r['train_s'] for r in finished.values()), 1),
        'wall_s_this_invocation': round(time.perf_counter() - start, 1),
        'machine': machine_record(load_before),
    }
    with open(osp.join(out, 'study.json'), 'w') as f:
        json.dump(result, f, indent=2)
    plot(summary, osp.join(out, 'study.png'), f"{profile['iters']} iterations per run; {len(finished)} of "
         f'{len(plan)} runs; held-out coffee and camera, {recipe.HELD_OUT_DRAWS} draws each')
    print(f"\nPaired PSNR differences at {profile['iters']} iterations ({len(finished)}/{len(plan)} runs):")
    print(format_table(summary))
    for task in summary['tasks']:
        print(f'\n{format_budget_table(summary, task)}')
    print(f'\n{format_comparisons(summary)}')
    print(f'\nwrote {out}/study.json, study.png, study_runs/ and study_logs/')
    return result


if __name__ == '__main__':
    main()
