"""Cost of one SLKD training iteration relative to the network passes it cannot avoid.

The run is ``options/slkd_derain.yml`` (Restormer teachers, dim 48, blocks [4, 6, 6, 8]; Res-SL student; all four
loss terms) with randomly initialised teachers (their weights do not change the cost). In one process, taking
turns so that both see the same machine load, it times

- *SLKD*: ``SLKDModel.optimize_parameters`` on a fixed batch (student, both teachers, SCM, all losses, backward,
  Adam step), and
- *unavoidable*: the student's forward + backward (L1 to the target) and the forward passes of Teacher A on the
  input and Teacher B on the target (no gradients), on the same batch,

at each ``--patches`` size with batch ``--batch``, and prints their ratio (target: at most 1.15). ``--amp bf16`` (or
``fp16``) runs both under ``train.amp``'s autocast (bf16 runs on CPUs too). Peak memory of
both is what one step adds to the memory in use before it (see :func:`peak_memory`). ``--profile`` adds the
operators that dominate an SLKD iteration. Writes ``step_cost.json`` and ``step_cost.png`` (``step_cost_bf16.*``
with ``--amp bf16``) to ``--out`` (``bench/results``).

    python bench/step_cost.py [--patches 64 128] [--batch 4] [--repeats 3] [--threads 2] [--amp bf16|fp16]
                              [--profile] [--out DIR]
"""
import argparse
import ctypes
import gc
import json
import os
import statistics
import tempfile
from os import path as osp
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import yaml

from _common import RESULTS, ROOT, interleaved_times, machine_record
from slkd_basicsr import compat  # before basicsr: its import needs our torchvision alias
from slkd_basicsr.models.precision import AMP_DTYPES, autocast

# isort: split
from basicsr.archs import build_network
from basicsr.models import build_model

RECIPE = osp.join(ROOT, 'options', 'slkd_derain.yml')
TARGET = 1.15


def recipe_options(patch: int, checkpoint_dir: str, device: torch.device, amp: Optional[str] = None) -> Dict[str, Any]:
    """The deraining recipe as ``build_model`` takes it, with random teachers saved under ``checkpoint_dir``."""
    with open(RECIPE) as f:
        opt = yaml.safe_load(f)
    for which in ('a', 'b'):
        path = osp.join(checkpoint_dir, f'teacher_{which}.pth')
        if not osp.isfile(path):
            torch.save({'params': build_network(dict(opt[f'network_teacher_{which}'])).state_dict()}, path)
        opt['path'][f'pretrain_network_teacher_{which}'] = path
    opt['datasets']['train']['gt_size'] = patch
    opt['distill'].update(log_complexity=False, check_teachers=False)  # random teachers, no validation data here
    opt['train']['amp'] = amp or False
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False,
               num_gpu=int(device.type == 'cuda'))
    return opt


def make_steps(patch: int, batch: int, checkpoint_dir: str, device: torch.device,
               amp: Optional[str] = None) -> Tuple[Callable[[], None], Callable[[], None]]:
    """The SLKD iteration and the unavoidable passes (under the same autocast), as two callables on one batch."""
    model = build_model(recipe_options(patch, checkpoint_dir, device, amp))
    generator = torch.Generator().manual_seed(0)
    data = {key: torch.rand(batch, 3, patch, patch, generator=generator) for key in ('lq', 'gt')}
    model.feed_data(data)
    lq, gt = model.lq, model.gt
    iteration = iter(range(1, 10**9))

    def slkd() -> None:
        model.optimize_parameters(next(iteration))

    def unavoidable() -> None:
        model.net_g.zero_grad(set_to_none=True)
        with autocast(device, AMP_DTYPES.get(amp)):
            (model.net_g(lq).float() - gt).abs().mean().backward()
            with torch.no_grad():
                model.teacher_a(lq)
                model.teacher_b(gt)
        for taps in (model.student_taps, model.teacher_a_taps, model.teacher_b_taps):
            taps.clear()  # the hooks recorded features that nothing here reads

    return slkd, unavoidable


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (Linux), in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'/proc/self/status has no {field}')


def peak_memory(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes that one step adds to what is in use before it.

    On a GPU: the allocator's peak. On a Linux CPU: the peak resident set (reset through /proc/self/clear_refs)
    over the resident set before the step, after freed heap memory has been handed back to the system, so that
    the step cannot hide its use in pages left over from building the networks.
    """
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current resident set
    base = _status_bytes('VmRSS')
    step()
    return _status_bytes('VmHWM') - base


def profile_table(slkd: Callable[[], None], rows: int = 15) -> str:
    """The operators with the most self time in one SLKD iteration."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        slkd()
    sort_by = 'self_cuda_time_total' if torch.cuda.is_available() else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=sort_by, row_limit=rows)


def plot(rows: List[Dict[str, Any]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = [f'patch {row["patch"]}' for row in rows]
    width = 0.38
    for ax, key, unit, scale in ((axes[0], 'seconds', 's / iteration', 1), (axes[1], 'peak_bytes', 'peak MiB', 2**20)):
        for offset, name in ((-width / 2, 'unavoidable'), (width / 2, 'slkd')):
            ax.bar([i + offset for i in range(len(rows))], [row[key][name] / scale for row in rows], width, label=name)
        ax.set_xticks(range(len(rows)), labels)
        ax.set_ylabel(unit)
    axes[0].set_title('time (ratio ' + ', '.join(f'{row["ratio"]:.2f}' for row in rows) + f'; target {TARGET})')
    axes[1].set_title('peak memory')
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: List[str] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--patches', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2, help='CPU threads')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES), help='mixed precision (train.amp), e.g. bf16')
    parser.add_argument('--profile', action='store_true', help='print the top operators of an SLKD iteration')
    parser.add_argument('--out', default=RESULTS, help='folder for the json and png')
    args = parser.parse_args(argv)
    compat.apply()
    torch.set_num_threads(args.threads)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    load_before = os.getloadavg()
    result = {
        'recipe': osp.relpath(RECIPE, ROOT),
        'batch': args.batch,
        'amp': args.amp or False,
        'repeats': args.repeats,
        'target': TARGET,
        'rows': [],
    }
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        for patch in args.patches:
            slkd, unavoidable = make_steps(patch, args.batch, checkpoint_dir, device, args.amp)
            steps = {'slkd': slkd, 'unavoidable': unavoidable}
            seconds = {name: statistics.median(times)
                       for name, times in interleaved_times(steps, args.repeats, device).items()}
            peaks = {name: peak_memory(step, device) for name, step in steps.items()}
            if args.profile:
                print(f'patch {patch}: top operators of one SLKD iteration\n{profile_table(slkd)}')
            row = {'patch': patch, 'seconds': seconds, 'ratio': seconds['slkd'] / seconds['unavoidable'],
                   'peak_bytes': peaks, 'memory_ratio': peaks['slkd'] / max(peaks['unavoidable'], 1)}
            result['rows'].append(row)
            print(f'patch {patch}, batch {args.batch}, amp {args.amp or "off"}: SLKD {seconds["slkd"]:.3f} s / '
                  f'unavoidable {seconds["unavoidable"]:.3f} s = {row["ratio"]:.3f} (target <= {TARGET}); peak memory '
                  f'{peaks["slkd"] / 2**20:.0f} / {peaks["unavoidable"] / 2**20:.0f} MiB = {row["memory_ratio"]:.2f}')
    result['machine'] = machine_record(load_before, device)
    os.makedirs(args.out, exist_ok=True)
    stem = 'step_cost' + (f'_{args.amp}' if args.amp else '')
    with open(osp.join(args.out, f'{stem}.json'), 'w') as f:
        json.dump(result, f, indent=2)
    plot(result['rows'], osp.join(args.out, f'{stem}.png'))
    return result


if __name__ == '__main__':
    main()
