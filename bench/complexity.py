"""Parameters, FLOPs and CPU latency of every teacher and its SLKD student.

Run from a clone with the package installed (the teachers take tens of seconds each on a CPU)::

    python bench/complexity.py            # all entries, 256 x 256, 2 threads
    python bench/complexity.py --only Restormer --repeats 5

Each pair is a shipped recipe under ``options/``: its ``network_teacher_a`` is the teacher and its ``network_g``
the student. Parameters and FLOPs come from :mod:`slkd_basicsr.complexity` (the counts the training log prints):
``mmengine.analysis.FlopAnalyzer`` counts one multiply-add as one FLOP (so they are MACs) for convolutions,
linear layers and matrix products; element-wise operations, normalisation, softmax and top-k are not counted
(they are listed per net under ``uncounted_ops``). Latency is the median of ``--repeats`` single forward passes
(after one warm-up pass) on the CPU with ``--threads`` threads, teacher and student taking turns. Writes
``complexity.json`` and ``complexity.png`` to ``--out`` (``bench/results``).

A new teacher/student pair is one more entry in ``ENTRIES``.
"""
import json
import os
import statistics
from functools import partial
from os import path as osp
from typing import Dict, List, Tuple

# Set before torch loads OpenMP: busy-waiting threads on a shared CPU made 2-thread timings swing 5-10x here;
# passive waiting keeps them steady and costs nothing measurable on an idle machine.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402
import yaml  # noqa: E402

import slkd_basicsr  # noqa: E402,F401  (before basicsr: its import needs our torchvision alias)
from _common import (ROOT, command_line, interleaved_times, machine_record, save_figure,  # noqa: E402
                     teacher_student_bars, teacher_student_parser, write_results)

# isort: split
from basicsr.archs import build_network  # noqa: E402

from slkd_basicsr.complexity import count_params, flop_analysis  # noqa: E402
from slkd_basicsr.tools.process import prepare_basicsr  # noqa: E402

# recipe: a shipped SLKD options file, relative to the repository root
ENTRIES = [
    dict(name='Restormer (deraining)', recipe='options/slkd_derain.yml'),
    dict(name='NAFNet-w32 (SIDD)', recipe='options/slkd_denoise_nafnet.yml'),
    dict(name='NAFNet-w64 (GoPro)', recipe='options/slkd_deblur_nafnet.yml'),
    dict(name='DRSformer (deraining)', recipe='options/slkd_derain_drsformer.yml'),
]


def recipe_networks(recipe: str) -> Tuple[dict, dict]:
    """The teacher (``network_teacher_a``) and student (``network_g``) options of a recipe under the root."""
    full = osp.join(ROOT, recipe)
    with open(full) as f:
        opt = yaml.safe_load(f)
    missing = [key for key in ('network_teacher_a', 'network_g') if key not in opt]
    if missing:
        raise ValueError(f'{full} has no {" or ".join(missing)}; an SLKD recipe names the teacher as '
                         'network_teacher_a and the student as network_g.')
    return dict(opt['network_teacher_a']), dict(opt['network_g'])


def build(opt: dict) -> Tuple[torch.nn.Module, int]:
    """The network in eval mode and its number of input channels."""
    net = build_network(dict(opt)).eval()
    channels = opt.get('inp_channels', opt.get('img_channel', opt.get('dd_in', 3)))
    return net, channels


def count(opt: dict, size: int) -> dict:
    """Parameters and FLOPs (multiply-adds) of one forward pass on 1 x C x size x size."""
    net, channels = build(opt)
    flops, uncounted = flop_analysis(net, (channels, size, size))
    return {'params': count_params(net), 'flops': flops, 'uncounted_ops': uncounted}


def latencies(opts: List[dict], size: int, repeats: int) -> List[dict]:
    """Median CPU latency (ms) of one forward pass of each network, the networks timed in turn."""
    steps = {}
    for index, opt in enumerate(opts):
        net, channels = build(opt)
        steps[index] = partial(net, torch.rand(1, channels, size, size))
    with torch.no_grad():
        runs = interleaved_times(steps, repeats)
    return [{
        'latency_ms': 1e3 * statistics.median(times),
        'latency_runs_ms': [round(1e3 * t, 1) for t in times]
    } for times in runs.values()]


def run(entries: List[dict], size: int, repeats: int) -> List[dict]:
    """Count each distinct network once, time each teacher/student pair, and give student/teacher ratios."""
    counted: Dict[str, dict] = {}

    def counts(opt: dict) -> dict:
        key = json.dumps(opt, sort_keys=True)
        if key not in counted:
            counted[key] = count(opt, size)
        return counted[key]

    rows = []
    for entry in entries:
        print(f'measuring {entry["name"]} ...', flush=True)
        teacher_opt, student_opt = recipe_networks(entry['recipe'])
        teacher_time, student_time = latencies([teacher_opt, student_opt], size, repeats)
        teacher = {'network_g': teacher_opt, **counts(teacher_opt), **teacher_time}
        student = {'network_g': student_opt, **counts(student_opt), **student_time}
        rows.append({
            **entry,
            'teacher_stats': teacher,
            'student_stats': student,
            'params_ratio': student['params'] / teacher['params'],
            'flops_ratio': student['flops'] / teacher['flops'],
            'speedup': teacher['latency_ms'] / student['latency_ms'],
        })
    return rows


def print_table(rows: List[dict]) -> None:
    header = (f'| {"pair":24} | {"params T/S (M)":>16} | {"GFLOPs T/S":>16} | {"CPU ms T/S":>18} '
              f'| {"params":>6} | {"FLOPs":>6} | {"speed-up":>8} |')
    print(header)
    print('|' + '|'.join('-' * (len(cell)) for cell in header.split('|')[1:-1]) + '|')
    for row in rows:
        t, s = row['teacher_stats'], row['student_stats']
        print(f'| {row["name"]:24} | {t["params"] / 1e6:7.2f} / {s["params"] / 1e6:6.2f} '
              f'| {t["flops"] / 1e9:7.1f} / {s["flops"] / 1e9:6.2f} '
              f'| {t["latency_ms"]:8.0f} / {s["latency_ms"]:7.0f} '
              f'| {row["params_ratio"]:6.1%} | {row["flops_ratio"]:6.1%} | {row["speedup"]:7.1f}x |')


def plot(rows: List[dict], path: str, size: int, threads: int) -> None:
    """Teacher vs student bars (log scale) for parameters, FLOPs and latency, one group per pair."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [('params', 1e6, 'parameters (M)'), ('flops', 1e9, f'GFLOPs (MACs) at {size}x{size}'),
              ('latency_ms', 1, f'CPU latency (ms), {threads} threads')]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5))
    for ax, (key, scale, title) in zip(axes, panels):
        teacher = [row['teacher_stats'][key] / scale for row in rows]
        student = [row['student_stats'][key] / scale for row in rows]
        ratios = [f'{s / t:.0%}' for t, s in zip(teacher, student)]
        teacher_student_bars(ax, [row['name'] for row in rows], teacher, student, ratios, title,
                             ('teacher', 'student (SL preset)'))
    save_figure(fig, axes, 'SLKD students vs teachers (student/teacher ratio above each student bar)', path, 120)


def main(argv: List[str] = None) -> None:
    parser = teacher_student_parser(__doc__.split('\n')[0], 'CPU threads for the latency',
                                    'timed forward passes per net (median reported)')
    args = parser.parse_args(argv)
    prepare_basicsr()

    torch.set_num_threads(args.threads)
    entries = [e for e in ENTRIES if args.only is None or any(word in e['name'] for word in args.only)]
    if not entries:
        parser.error(f'--only {args.only} matches no entry; names: {[e["name"] for e in ENTRIES]}')
    load_before = os.getloadavg()
    rows = run(entries, args.size, args.repeats)
    print_table(rows)

    result = {
        'command': command_line('complexity', argv),
        'input': [1, 3, args.size, args.size],
        'flops_counter': 'mmengine.analysis.FlopAnalyzer (one multiply-add = one FLOP)',
        'threads': args.threads,
        'repeats': args.repeats,
        'machine': machine_record(load_before),
        'rows': rows,
    }
    write_results(args.out, 'complexity', result, lambda path: plot(rows, path, args.size, args.threads))


if __name__ == '__main__':
    main()
