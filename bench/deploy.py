"""Deployment table: each teacher (official configuration) and its SLKD student, in PyTorch and ONNX Runtime.

Run from the repository root (a few minutes on two CPU threads: the DRSformer teacher takes tens of seconds a
pass)::

    python bench/deploy.py                    # all entries, 256 x 256, 2 threads, 3 repeats
    python bench/deploy.py --only NAFNet --repeats 5

For every entry, the teacher is ``network_teacher_a`` and the student ``network_g`` of one recipe in
``options/`` (random weights: latency does not depend on them). Each network is exported with
``slkd-export``'s code path (TorchScript exporter, dynamic batch/height/width), checked against PyTorch with
onnxruntime at its three parity sizes, and timed at batch 1 on the CPU: PyTorch eager and onnxruntime, teacher
and student taking turns (median of ``--repeats`` after one warm-up each), so the speed-ups come from one run
under the same load. FLOPs are counted by ``mmengine.analysis.FlopAnalyzer`` (one multiply-add = one FLOP).
Writes ``bench/results/deploy.json`` and ``bench/results/deploy.png``.
"""
import copy
import os
import statistics
import tempfile
import time
from os import path as osp
from typing import Any, Dict, List

# Set before torch loads OpenMP: busy-waiting threads on a shared CPU make 2-thread timings swing 5-10x;
# slkd-export makes onnxruntime follow the same policy.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402
import yaml  # noqa: E402

from _common import (ROOT, command_line, interleaved_times, machine_record, save_figure,  # noqa: E402
                     teacher_student_bars, teacher_student_parser, write_results)

# name, and the recipe (relative to the root) whose network_teacher_a and network_g are the pair
ENTRIES = [
    ('Restormer (deraining)', 'options/slkd_derain.yml'),
    ('NAFNet-w32 (SIDD)', 'options/slkd_denoise_nafnet.yml'),
    ('NAFNet-w64 (GoPro)', 'options/slkd_deblur_nafnet.yml'),
    ('DRSformer (deraining)', 'options/slkd_derain_drsformer.yml'),
    ('Uformer-B (GoPro)', 'options/slkd_deblur_uformer.yml'),
]


def network_pair(recipe: str) -> Dict[str, Dict[str, Any]]:
    """``{'teacher': network_teacher_a, 'student': network_g}`` of a recipe in ``options/``."""
    with open(osp.join(ROOT, recipe)) as f:
        opt = yaml.safe_load(f)
    return {'teacher': dict(opt['network_teacher_a']), 'student': dict(opt['network_g'])}


def prepare(network_opt: Dict[str, Any], folder: str, label: str, size: int) -> Dict[str, Any]:
    """Build with random weights, count, export and check one network; returns its record and live objects."""
    from basicsr.archs import build_network

    from slkd_basicsr.archs.networks import input_channels
    from slkd_basicsr.complexity import count_flops, count_params
    from slkd_basicsr.tools import export

    torch.manual_seed(0)
    net = build_network(copy.deepcopy(network_opt)).eval()
    channels = input_channels(net)
    path = osp.join(folder, f'{label}.onnx')
    start = time.perf_counter()
    model = export.export_onnx(net, path)
    export_s = time.perf_counter() - start
    parity = export.check_parity(net, path, export.parity_shapes(channels, export.pad_multiple(net)))
    record = {
        'network_g': network_opt,
        'params': count_params(net),
        'flops': count_flops(net, (channels, size, size)),
        'export_s': round(export_s, 1),
        'onnx_mb': round(osp.getsize(path) / 2**20, 1),
        'parity_max_abs_diff': {'x'.join(map(str, r.shape)): r.max_abs_diff for r in parity},
        'parity_topk_ties_set_aside': {'x'.join(map(str, r.shape)): r.topk_ties for r in parity if r.topk_ties},
        'parity_ok': all(r.max_abs_diff <= export.PARITY_TOLERANCE for r in parity),
        'min_side': model.min_side,
    }
    return {'record': record, 'net': net, 'path': path, 'channels': channels}


def measure(name: str, recipe: str, size: int, threads: int, repeats: int) -> Dict[str, Any]:
    """One row: teacher and student prepared, then timed in both runtimes, all four taking turns."""
    from slkd_basicsr.tools import export

    with tempfile.TemporaryDirectory() as folder:
        nets = {label: prepare(opt, folder, label, size) for label, opt in network_pair(recipe).items()}
        calls = {}
        for label, item in nets.items():
            shape = (1, item['channels'], size, size)
            for runtime, call in export.runtime_calls(item['net'], item['path'], shape, threads).items():
                calls[f'{label}/{runtime}'] = call
        runs = {name: [1e3 * t for t in times] for name, times in interleaved_times(calls, repeats).items()}
    row = {'name': name, 'recipe': recipe}
    for label, item in nets.items():
        record = item['record']
        for runtime in ('pytorch', 'onnxruntime'):
            record[f'{runtime}_ms'] = statistics.median(runs[f'{label}/{runtime}'])
            record[f'{runtime}_runs_ms'] = [round(t, 1) for t in runs[f'{label}/{runtime}']]
        row[label] = record
    teacher, student = row['teacher'], row['student']
    row.update({
        'params_ratio': student['params'] / teacher['params'],
        'flops_ratio': student['flops'] / teacher['flops'],
        'speedup_pytorch': teacher['pytorch_ms'] / student['pytorch_ms'],
        'speedup_onnxruntime': teacher['onnxruntime_ms'] / student['onnxruntime_ms'],
    })
    return row


def table(rows: List[Dict[str, Any]], size: int, threads: int) -> str:
    """The Markdown table of the README and docs/export.md."""
    lines = [
        '| pair | params T / S (M) | GFLOPs T / S | PyTorch ms T / S | onnxruntime ms T / S '
        '| speed-up PyTorch | speed-up onnxruntime |', '|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        t, s = row['teacher'], row['student']
        lines.append(f'| {row["name"]} | {t["params"] / 1e6:.2f} / {s["params"] / 1e6:.2f} '
                     f'| {t["flops"] / 1e9:.1f} / {s["flops"] / 1e9:.2f} '
                     f'| {t["pytorch_ms"]:.0f} / {s["pytorch_ms"]:.0f} '
                     f'| {t["onnxruntime_ms"]:.0f} / {s["onnxruntime_ms"]:.0f} '
                     f'| {row["speedup_pytorch"]:.1f}x | {row["speedup_onnxruntime"]:.1f}x |')
    lines.append(f'\nBatch 1, {size}x{size}, CPU, {threads} threads per runtime; T = teacher, S = student.')
    return '\n'.join(lines)


def plot(rows: List[Dict[str, Any]], path: str, size: int, threads: int) -> None:
    """Teacher vs student bars (log scale): params, FLOPs, PyTorch and onnxruntime latency."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [('params', 1e6, 'parameters (M)', None), ('flops', 1e9, f'GFLOPs at {size}x{size}', None),
              ('pytorch_ms', 1, f'PyTorch eager ms ({threads} threads)', 'speedup_pytorch'),
              ('onnxruntime_ms', 1, f'onnxruntime ms ({threads} threads)', 'speedup_onnxruntime')]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5))
    for ax, (key, scale, title, speedup) in zip(axes, panels):
        teacher = [row['teacher'][key] / scale for row in rows]
        student = [row['student'][key] / scale for row in rows]
        notes = [f'{row[speedup]:.1f}x' if speedup else f'{s / t:.0%}' for row, t, s in zip(rows, teacher, student)]
        teacher_student_bars(ax, [row['name'] for row in rows], teacher, student, notes, title,
                             ('teacher (official config)', 'SLKD student'))
    save_figure(fig, axes, 'Teachers vs SLKD students on the CPU (student/teacher ratio or speed-up above each '
                'student bar)', path, 110)


def main(argv: List[str] = None) -> None:
    parser = teacher_student_parser(__doc__.split('\n')[0], 'CPU threads per runtime',
                                    'timed passes per network and runtime (median)')
    args = parser.parse_args(argv)

    import onnx
    import onnxruntime

    from slkd_basicsr.tools.process import prepare_basicsr

    prepare_basicsr()
    entries = [e for e in ENTRIES if args.only is None or any(word in e[0] for word in args.only)]
    if not entries:
        parser.error(f'--only {args.only} matches no entry; names: {[name for name, _ in ENTRIES]}')
    load_before, start = os.getloadavg(), time.perf_counter()
    rows = []
    for name, recipe in entries:
        print(f'{name}: export, parity, FLOPs, latency ...', flush=True)
        rows.append(measure(name, recipe, args.size, args.threads, args.repeats))
        print(f'  done after {time.perf_counter() - start:.0f} s', flush=True)
    print(table(rows, args.size, args.threads))

    result = {
        'command': command_line('deploy', argv),
        'input': [1, 3, args.size, args.size],
        'threads_per_runtime': args.threads,
        'repeats': args.repeats,
        'flops_counter': 'mmengine.analysis.FlopAnalyzer (one multiply-add = one FLOP)',
        'weights': 'random (torch.manual_seed(0)); latency does not depend on them',
        'wall_s': round(time.perf_counter() - start),
        'machine': {**machine_record(load_before), 'onnx': onnx.__version__, 'onnxruntime': onnxruntime.__version__},
        'rows': rows,
    }
    write_results(args.out, 'deploy', result, lambda path: plot(rows, path, args.size, args.threads))


if __name__ == '__main__':
    main()
