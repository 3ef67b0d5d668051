"""Parameters, FLOPs and CPU latency of every teacher and its SLKD student preset.

Run from the repository root (the teachers take tens of seconds each on a CPU)::

    PYTHONPATH=. python bench/complexity.py            # all entries, 256 x 256, 2 threads
    PYTHONPATH=. python bench/complexity.py --only Restormer --repeats 5

FLOPs come from ``mmengine.analysis.FlopAnalyzer``, which counts one multiply-add as one FLOP (so they are
MACs) and counts convolutions, linear layers and matrix products; element-wise operations, normalisation,
softmax and top-k are not counted (they are listed per net under ``uncounted_ops``). Latency is the median
of ``--repeats`` single forward passes (after one warm-up pass) timed with ``torch.utils.benchmark`` on the
CPU with ``--threads`` threads, teacher and student taking turns. Writes ``bench/results/complexity.json``
and ``bench/results/complexity.png``.

A new teacher/student pair is one more entry in ``ENTRIES``.
"""
import argparse
import json
import os
import platform
import statistics
import sys
from os import path as osp
from typing import Dict, List, Tuple

# Set before torch loads OpenMP: busy-waiting threads on a shared CPU made 2-thread timings swing 5-10x here;
# passive waiting keeps them steady and costs nothing measurable on an idle machine.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402
import yaml  # noqa: E402
from torch.utils import benchmark  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# teacher: an official layout (tests/data/spec/*.json: arch + network_g) or an options file with network_g,
# relative to the repository root; student: a registered compact student arch, built with its preset.
ENTRIES = [
    dict(
        name='Restormer (deraining)',
        teacher='tests/data/spec/restormer_deraining.json',
        student='ResSL'),
    dict(
        name='NAFNet-w32 (SIDD)',
        teacher='tests/data/spec/nafnet_sidd_width32.json',
        student='NAFSL'),
    dict(
        name='NAFNet-w64 (GoPro)',
        teacher='tests/data/spec/nafnet_gopro_width64.json',
        student='NAFSL'),
    dict(
        name='DRSformer (deraining)',
        teacher='tests/data/spec/drsformer_deraining.json',
        student='DRSSL'),
]


def network_options(path: str) -> dict:
    """``network_g`` options (with ``type``) from a spec JSON or an options YAML, relative to the root."""
    full = osp.join(ROOT, path)
    with open(full) as f:
        if path.endswith('.json'):
            spec = json.load(f)
            return {'type': spec['arch'], **spec['network_g']}
        opt = yaml.safe_load(f)
    if not isinstance(opt, dict) or 'network_g' not in opt:
        raise ValueError(f'{full} has no network_g block.')
    return dict(opt['network_g'])


def build(opt: dict) -> Tuple[torch.nn.Module, int]:
    """The network in eval mode and its number of input channels."""
    from basicsr.archs import build_network

    net = build_network(dict(opt)).eval()
    channels = opt.get('inp_channels', opt.get('img_channel', opt.get('dd_in', 3)))
    return net, channels


def count(opt: dict, size: int) -> dict:
    """Parameters and FLOPs (multiply-adds) of one forward pass on 1 x C x size x size."""
    from mmengine.analysis import FlopAnalyzer

    net, channels = build(opt)
    with torch.no_grad():
        flops = FlopAnalyzer(net, torch.rand(1, channels, size, size))
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return {
            'params': sum(p.numel() for p in net.parameters()),
            'flops': flops.total(),
            'uncounted_ops': sorted(flops.unsupported_ops()),
        }


def latencies(opts: List[dict], size: int, threads: int, repeats: int) -> List[dict]:
    """Median CPU latency (ms) of one forward pass of each network, the networks timed in turn.

    Taking turns (teacher, student, teacher, ...) exposes both to the same background load, so their ratio is
    steadier than that of two separate runs on a shared machine.
    """
    timers = []
    for opt in opts:
        net, channels = build(opt)
        timers.append(
            benchmark.Timer(
                'net(x)', globals={
                    'net': net,
                    'x': torch.rand(1, channels, size, size)
                }, num_threads=threads))
    runs: List[List[float]] = [[] for _ in opts]
    with torch.no_grad():
        for timer in timers:
            timer.timeit(1)  # warm-up: first-call allocations and kernel selection
        for _ in range(repeats):
            for timer, times in zip(timers, runs):
                times.append(timer.timeit(1).median)
    return [{
        'latency_ms': 1e3 * statistics.median(times),
        'latency_runs_ms': [round(1e3 * t, 1) for t in times]
    } for times in runs]


def run(entries: List[dict], size: int, threads: int, repeats: int) -> List[dict]:
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
        teacher_opt, student_opt = network_options(entry['teacher']), {'type': entry['student']}
        teacher_time, student_time = latencies([teacher_opt, student_opt], size, threads, repeats)
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
    positions = range(len(rows))
    for ax, (key, scale, title) in zip(axes, panels):
        teacher = [row['teacher_stats'][key] / scale for row in rows]
        student = [row['student_stats'][key] / scale for row in rows]
        ax.bar([p - 0.2 for p in positions], teacher, width=0.4, label='teacher', color='#4c72b0')
        bars = ax.bar([p + 0.2 for p in positions], student, width=0.4, label='student (SL preset)', color='#dd8452')
        for bar, t, s in zip(bars, teacher, student):
            ax.annotate(
                f'{s / t:.0%}', (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha='center',
                va='bottom',
                fontsize=8)
        ax.set_yscale('log')
        ax.set_ylim(bottom=0.5 * min(student))
        ax.set_title(title)
        ax.set_xticks(list(positions))
        ax.set_xticklabels([row['name'] for row in rows], rotation=20, ha='right', fontsize=8)
    axes[0].legend(fontsize=8)
    fig.suptitle('SLKD students vs teachers (student/teacher ratio above each student bar)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=256, help='input height and width')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads for the latency')
    parser.add_argument('--repeats', type=int, default=3, help='timed forward passes per net (median reported)')
    parser.add_argument('--only', nargs='+', default=None, help='entries whose name contains one of these words')
    parser.add_argument('--out', default=osp.join(ROOT, 'bench', 'results'), help='folder for the json and png')
    args = parser.parse_args(argv)

    sys.path.insert(0, ROOT)
    import slkd_basicsr  # noqa: F401  (patches BasicSR and registers the archs before basicsr is imported)

    torch.set_num_threads(args.threads)
    entries = [e for e in ENTRIES if args.only is None or any(word in e['name'] for word in args.only)]
    if not entries:
        parser.error(f'--only {args.only} matches no entry; names: {[e["name"] for e in ENTRIES]}')
    load_before = os.getloadavg()
    rows = run(entries, args.size, args.threads, args.repeats)
    print_table(rows)

    os.makedirs(args.out, exist_ok=True)
    result = {
        'command': 'PYTHONPATH=. python bench/complexity.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        'input': [1, 3, args.size, args.size],
        'flops_counter': 'mmengine.analysis.FlopAnalyzer (one multiply-add = one FLOP)',
        'threads': args.threads,
        'repeats': args.repeats,
        'machine': {
            'cpu': platform.processor() or platform.machine(),
            'cpu_count': os.cpu_count(),
            'load_average_before_after': [list(load_before), list(os.getloadavg())],
            'torch': torch.__version__,
            'OMP_WAIT_POLICY': os.environ['OMP_WAIT_POLICY'],
        },
        'rows': rows,
    }
    with open(osp.join(args.out, 'complexity.json'), 'w') as f:
        json.dump(result, f, indent=2)
    plot(rows, osp.join(args.out, 'complexity.png'), args.size, args.threads)
    print(f'wrote {args.out}/complexity.json and complexity.png')


if __name__ == '__main__':
    main()
