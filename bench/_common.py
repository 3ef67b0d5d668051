"""What every benchmark shares: interleaved timing, the machine record, where results go, teacher/student bars.

Every script runs the same way, from a clone with the package installed (``pip install -e .``)::

    python bench/<script>.py [--out DIR] ...

Nothing here or in the scripts adds the clone to ``sys.path``: ``slkd_basicsr`` is the one Python imports
(the installed package, or a checkout named by ``PYTHONPATH``), and the training subprocesses of
``bench/study.py`` inherit the same environment, so they import that same package. This module is found
because Python puts a script's own folder (``bench/``) first on ``sys.path``.

Scripts that set OpenMP variables (``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY``) do so before importing this
module, which imports torch.
"""
import argparse
import json
import os
import platform
import sys
from os import path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from slkd_basicsr.complexity import interleaved_times  # noqa: F401  (the one timing helper, re-exported)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(ROOT, 'bench', 'results')


def machine_record(load_before: Sequence[float], device: Optional[torch.device] = None) -> Dict[str, Any]:
    """What a timing depends on besides the code, for a result's ``machine`` entry.

    ``load_before`` is ``os.getloadavg()`` taken when the measurements started; the load now is recorded beside it.
    """
    return {
        'cpu': platform.processor() or platform.machine(),
        'cpu_count': os.cpu_count(),
        'device': torch.cuda.get_device_name(device) if device is not None and device.type == 'cuda' else 'cpu',
        'torch_threads': torch.get_num_threads(),
        'load_average_before_after': [list(load_before), list(os.getloadavg())],
        'torch': torch.__version__,
        **{name: os.environ.get(name) for name in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY')},
    }


def teacher_student_bars(ax: Any, names: Sequence[str], teacher: Sequence[float], student: Sequence[float],
                         notes: Sequence[str], title: str, labels: Sequence[str] = ('teacher', 'student')) -> None:
    """One matplotlib panel: each pair's teacher bar beside its student's (log scale), ``notes`` (e.g. the ratio)
    above the student bars, the pairs' ``names`` under them."""
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], teacher, width=0.4, label=labels[0], color='#4c72b0')
    bars = ax.bar([p + 0.2 for p in positions], student, width=0.4, label=labels[1], color='#dd8452')
    for bar, note in zip(bars, notes):
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha='center', va='bottom', fontsize=8)
    ax.set_yscale('log')
    ax.set_ylim(bottom=0.5 * min(student))
    ax.set_title(title, fontsize=10)
    ax.set_xticks(list(positions))
    ax.set_xticklabels(names, rotation=20, ha='right', fontsize=8)


def save_figure(fig: Any, axes: Sequence[Any], title: str, path: str, dpi: int) -> None:
    """The legend on the first panel, ``title`` over all of them, then ``fig`` written to ``path`` and closed."""
    import matplotlib.pyplot as plt

    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def command_line(script: str, argv: Optional[List[str]]) -> str:
    """The command that ran ``bench/<script>.py`` with ``argv`` (None: this process's arguments), for a record."""
    return f'python bench/{script}.py ' + ' '.join(argv if argv is not None else sys.argv[1:])


def write_results(out: str, stem: str, result: Dict[str, Any], plot: Callable[[str], None]) -> None:
    """``result`` as ``<out>/<stem>.json``, ``plot`` drawn into ``<out>/<stem>.png``, and a line saying so."""
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, f'{stem}.json'), 'w') as f:
        json.dump(result, f, indent=2)
    plot(osp.join(out, f'{stem}.png'))
    print(f'wrote {out}/{stem}.json and {stem}.png')


def teacher_student_parser(description: str, threads_help: str, repeats_help: str) -> argparse.ArgumentParser:
    """The arguments of the scripts that compare teachers with their students: ``--size`` (input side), ``--threads``,
    ``--repeats``, ``--only`` (entries whose name holds one of the words) and ``--out`` (folder of the records)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--size', type=int, default=256, help='input height and width for FLOPs and latency')
    parser.add_argument('--threads', type=int, default=2, help=threads_help)
    parser.add_argument('--repeats', type=int, default=3, help=repeats_help)
    parser.add_argument('--only', nargs='+', default=None, help='entries whose name contains one of these words')
    parser.add_argument('--out', default=RESULTS, help='folder for the json and png')
    return parser
