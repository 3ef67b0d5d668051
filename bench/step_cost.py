"""Cost of one SLKD training iteration against the same student's iteration alone: what distilling costs a user.

A user chooses between distilling with SLKD and training the student alone for longer, so the headline is
*SLKD iteration / student-alone iteration*: the same student, batch and optimiser, each iteration complete
(forward, losses, backward, Adam step), timed in one process, taking turns so that all see the same machine load.
The second column keeps the older ratio, SLKD against *the passes it cannot avoid* (the student's forward and
backward plus one forward pass of each teacher).

Setups (``--setups``):

- ``shipped``: ``options/slkd_derain.yml`` (Restormer teachers, dim 48, blocks [4, 6, 6, 8]; ``ResSL`` student)
  with randomly initialised teachers (their weights do not change the cost), at each ``--patches`` size;
- ``tiny``: the study's networks (:mod:`slkd_basicsr.recipes.demo_recipe`: the shipped tiny teachers, the
  student with 12% of their parameters) at patch 64, as ``bench/study.py`` trains them; ``--tiny-teachers`` adds
  rows with randomly initialised teachers of other sizes (:data:`TINY_TEACHERS`, down to the student's own), to
  see what a cheaper teacher would save.

Each SLKD variant (``--variants``, see :data:`VARIANTS`) is the setup's options with some ``distill`` options
changed (what cuts the teachers' cost), or its distillation terms (:data:`TERM_VARIANTS`: ``feature_l1``, the
feature terms as a plain L1 on the same taps, which is what teachers, taps and SCM cost without the NSS extractors;
``kd_only``, L_KL alone): ``shipped`` is the setup as shipped (the teachers on a quarter of each
batch, cropped to 3/4 of each side), ``whole_batch`` the teachers on all of it, uncropped (the default before the
cost study). Every timed call runs ``--iters-per-call`` iterations (default :data:`ITERS_PER_CALL`), so that
``distill.every`` (2 or 4) is measured over its whole cycle. Peak memory is what one call adds to the memory in
use before it (see :func:`peak_memory`). ``--amp bf16`` runs everything under ``train.amp``'s autocast. Writes
``step_cost.json`` and ``step_cost.png`` (``step_cost_bf16.*`` with ``--amp``) to ``--out`` (``bench/results``).

    python bench/step_cost.py [--setups shipped tiny] [--patches 64 128] [--tiny-teachers shipped ...]
                              [--variants default ...] [--batch 4] [--repeats 3] [--iters-per-call 4]
                              [--threads 2] [--amp bf16|fp16] [--profile] [--out DIR]
"""
import argparse
import copy
import ctypes
import gc
import json
import os
import statistics
import tempfile
from os import path as osp
from typing import Any, Callable, Dict, List, Optional

import torch
import yaml

# slkd_basicsr before basicsr: its import needs our torchvision alias
from _common import RESULTS, ROOT, interleaved_times, machine_record
from slkd_basicsr.models.precision import AMP_DTYPES, amp_dtype, autocast
from slkd_basicsr.recipes import demo_recipe
from slkd_basicsr.recipes.tiny_nets import tiny_restormer
from slkd_basicsr.tools.process import flush_denormals, prepare_basicsr

# isort: split
from basicsr.archs import build_network
from basicsr.models import build_model

RECIPE = osp.join(ROOT, 'options', 'slkd_derain.yml')
TINY_PATCH = 64
# the targets of the cost issue: an SLKD iteration at most this many student-alone iterations
TARGETS = {'shipped': 2.0, 'tiny': 1.5}
# --tiny-teachers: the tiny setup's Teacher A and B arch (B without the global residual); None: the shipped ones
TINY_TEACHERS = {
    'shipped': None,  # dim 10, blocks [1, 2, 2, 2]: 0.46M parameters, trained
    'shallow': {**demo_recipe.TEACHER, 'num_blocks': [1, 1, 1, 1]},  # 0.32M
    'dim8_shallow': tiny_restormer(dim=8, ffn_expansion_factor=2.66),  # 0.21M
    'student_sized': demo_recipe.STUDENT,  # 0.056M: a teacher that costs what the student costs
}
ITERS_PER_CALL = 4  # default of --iters-per-call: whole cycles of distill.every 2 and 4
# variant -> distill options over the setup's own; each is one of SLKDModel's cost options or a combination
VARIANTS = {
    'shipped': {},
    'whole_batch': {'teacher_batch': None, 'teacher_crop': None},
    'teacher_half': {'teacher_batch': 0.5, 'teacher_crop': None},
    'teacher_quarter': {'teacher_batch': 0.25, 'teacher_crop': None},
    'teacher_quarter_crop_3q': {'teacher_batch': 0.25, 'teacher_crop': 0.75},
    'teacher_quarter_crop_half': {'teacher_batch': 0.25, 'teacher_crop': 0.5},
    'whole_batch_bf16': {'teacher_batch': None, 'teacher_crop': None, 'teacher_amp': 'bf16'},
    'teacher_quarter_bf16': {'teacher_batch': 0.25, 'teacher_crop': None, 'teacher_amp': 'bf16'},
    'teacher_quarter_crop_3q_bf16': {'teacher_batch': 0.25, 'teacher_crop': 0.75, 'teacher_amp': 'bf16'},
    'teacher_quarter_every_2': {'teacher_batch': 0.25, 'teacher_crop': None, 'every': 2},
    'teacher_quarter_every_4': {'teacher_batch': 0.25, 'teacher_crop': None, 'every': 4},
    'feature_l1': {},
    'kd_only': {},
}
# variants that change the distillation terms (TERM_VARIANTS, over the shipped distill options): the feature terms
# as a plain L1 on the same taps (what the teachers, taps and SCM cost without the NSS extractors), and L_KL alone
TERM_VARIANTS = {
    'feature_l1': {key: 'FeatureL1Loss' for key in ('nc_opt', 'et_opt')},
    'kd_only': {'nc_opt': None, 'et_opt': None},
}
DISTILL_LOSSES = ('kd_opt', 'nc_opt', 'et_opt')


def shipped_options(patch: int, checkpoint_dir: str) -> Dict[str, Any]:
    """The deraining recipe, with random teachers saved under ``checkpoint_dir`` (once per folder)."""
    with open(RECIPE) as f:
        opt = yaml.safe_load(f)
    for which in ('a', 'b'):
        path = osp.join(checkpoint_dir, f'teacher_{which}.pth')
        if not osp.isfile(path):
            torch.save({'params': build_network(dict(opt[f'network_teacher_{which}'])).state_dict()}, path)
        opt['path'][f'pretrain_network_teacher_{which}'] = path
    opt['datasets']['train']['gt_size'] = patch
    return opt


def tiny_options(teachers: str = 'shipped', checkpoint_dir: Optional[str] = None) -> Dict[str, Any]:
    """The study's SLKD run (the demo's tiny networks, the default loss weights) with the shipped teachers, or with
    randomly initialised ones of :data:`TINY_TEACHERS` ``[teachers]`` saved under ``checkpoint_dir``."""
    opt = demo_recipe.slkd_options(1000, demo_recipe.ASSET_TEACHER_A, demo_recipe.ASSET_TEACHER_B)
    arch = TINY_TEACHERS[teachers]
    if arch is not None:
        for which, residual in (('a', True), ('b', False)):
            opt[f'network_teacher_{which}'] = {**arch, 'global_residual': residual}
            path = osp.join(checkpoint_dir, f'tiny_{teachers}_teacher_{which}.pth')
            torch.save({'params': build_network(dict(opt[f'network_teacher_{which}'])).state_dict()}, path)
            opt['path'][f'pretrain_network_teacher_{which}'] = path
    return opt


def in_process(opt: Dict[str, Any], device: torch.device, amp: Optional[str],
               distill: Dict[str, Any]) -> Dict[str, Any]:
    """``opt`` as ``build_model`` takes it on ``device``, with ``distill`` options over its own."""
    opt = copy.deepcopy(opt)
    opt['distill'] = {**(opt.get('distill') or {}), 'log_complexity': False, 'check_teachers': False,
                      'log_grad_shares': False, **distill}
    opt['train']['amp'] = amp or False
    opt['num_gpu'] = int(device.type == 'cuda')
    opt['logger']['print_freq'] = 10**9  # nothing is logged between the timed iterations
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    # nothing is validated: the model would score Teacher A on the validation sets when it is built
    opt['datasets'] = {'train': opt['datasets']['train']}
    return opt


def with_terms(opt: Dict[str, Any], variant: str) -> Dict[str, Any]:
    """``opt`` with the distillation terms of :data:`TERM_VARIANTS` ``[variant]``: a loss type in place of a term's
    (same ``loss_weight``), or None to remove the term; other variants unchanged."""
    opt = copy.deepcopy(opt)
    for key, loss_type in TERM_VARIANTS.get(variant, {}).items():
        if loss_type is None:
            opt['train'].pop(key, None)
        else:
            opt['train'][key] = {'type': loss_type, 'loss_weight': opt['train'][key]['loss_weight']}
    return opt


def student_alone(opt: Dict[str, Any]) -> Dict[str, Any]:
    """The same run without distillation: the student, its optimiser and pixel loss (SLKDModel without teachers
    trains as SRModel does, and under the same ``train.amp``)."""
    opt = copy.deepcopy(opt)
    for key in ('network_teacher_a', 'network_teacher_b', 'distill'):
        opt.pop(key, None)
    for key in DISTILL_LOSSES:
        opt['train'].pop(key, None)
    return opt


def iterations(model: Any, batch: Dict[str, torch.Tensor], count: int) -> Callable[[], None]:
    """``count`` training iterations of ``model`` on ``batch``, as BasicSR's loop runs them."""
    counter = iter(range(1, 10**9))

    def run() -> None:
        for _ in range(count):
            current_iter = next(counter)
            model.feed_data(batch)
            model.optimize_parameters(current_iter)

    return run


def unavoidable_passes(model: Any, batch: Dict[str, torch.Tensor], amp: Optional[str],
                       count: int) -> Callable[[], None]:
    """The passes any distillation with these networks needs: the student's forward and backward (L1 to the
    target) and one forward pass of each teacher, ``count`` times."""
    lq, gt = batch['lq'].to(model.device), batch['gt'].to(model.device)

    def run() -> None:
        for _ in range(count):
            model.net_g.zero_grad(set_to_none=True)
            with autocast(model.device, amp_dtype(amp)):
                (model.net_g(lq).float() - gt).abs().mean().backward()
                with torch.no_grad():
                    model.teacher_a(lq)
                    model.teacher_b(gt)
            model._clear_taps()  # the hooks recorded features that nothing here reads

    return run


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


def profile_table(step: Callable[[], None], rows: int = 15) -> str:
    """The operators with the most self time in one call of ``step``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        step()
    sort_by = 'self_cuda_time_total' if torch.cuda.is_available() else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=sort_by, row_limit=rows)


def measure(setup: str, opt: Dict[str, Any], patch: int, args: argparse.Namespace, device: torch.device,
            teachers: str = 'shipped') -> Dict[str, Any]:
    """One row: seconds per iteration of every variant, the student alone and the unavoidable passes."""
    generator = torch.Generator().manual_seed(0)
    batch = {key: torch.rand(args.batch, 3, patch, patch, generator=generator) for key in ('lq', 'gt')}
    models = {f'slkd_{name}': build_model(in_process(with_terms(opt, name), device, args.amp, VARIANTS[name]))
              for name in args.variants}
    count = args.iters_per_call
    steps = {name: iterations(model, batch, count) for name, model in models.items()}
    steps['student'] = iterations(build_model(in_process(student_alone(opt), device, args.amp, {})), batch, count)
    steps['unavoidable'] = unavoidable_passes(next(iter(models.values())), batch, args.amp, count)
    seconds = {name: statistics.median(times) / count
               for name, times in interleaved_times(steps, args.repeats, device).items()}
    peaks = {name: peak_memory(step, device) for name, step in steps.items()}
    if args.profile:
        print(f'{setup}, patch {patch}: top operators of {count} SLKD iterations ({args.variants[0]})\n'
              f'{profile_table(steps[f"slkd_{args.variants[0]}"])}')
    return {
        'setup': setup, 'patch': patch, 'teachers': teachers, 'seconds': seconds, 'peak_bytes': peaks,
        'target': TARGETS[setup],
        'vs_student': {name: seconds[f'slkd_{name}'] / seconds['student'] for name in args.variants},
        'vs_unavoidable': {name: seconds[f'slkd_{name}'] / seconds['unavoidable'] for name in args.variants},
    }


def _label(row: Dict[str, Any]) -> str:
    """The setup, and the tiny teachers when they are not the setup's own."""
    return row['setup'] + ('' if row['teachers'] == 'shipped' else f" ({row['teachers']} teachers)")


def report(row: Dict[str, Any]) -> str:
    lines = [f"{_label(row)}, patch {row['patch']}: student alone {row['seconds']['student']:.3f} s/iter; "
             f"SLKD / student alone (target <= {row['target']:g}), and / unavoidable passes:"]
    for name, ratio in row['vs_student'].items():
        lines.append(f"  {name:<24} {row['seconds'][f'slkd_{name}']:.3f} s  {ratio:5.2f}x  "
                     f"{row['vs_unavoidable'][name]:5.2f}x")
    return '\n'.join(lines)


def plot(rows: List[Dict[str, Any]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    variants = list(rows[0]['vs_student'])
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(variants) * len(rows) / 2), 3.8))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        ax.bar([v + (i - (len(rows) - 1) / 2) * width for v in range(len(variants))],
               [row['vs_student'][name] for name in variants], width, label=f"{_label(row)} {row['patch']} px")
    for setup, target in TARGETS.items():
        if any(row['setup'] == setup for row in rows):
            ax.axhline(target, linestyle='--', linewidth=1, color='gray')
    ax.set_xticks(range(len(variants)), variants, rotation=20, ha='right')
    ax.set_ylabel('SLKD / student-alone iteration')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: List[str] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--setups', nargs='+', choices=sorted(TARGETS), default=['shipped', 'tiny'])
    parser.add_argument('--patches', type=int, nargs='+', default=[64, 128], help='patch sizes of the shipped setup')
    parser.add_argument('--tiny-teachers', nargs='+', choices=list(TINY_TEACHERS), default=['shipped'],
                        help='teachers of the tiny setup, one row each')
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--iters-per-call', type=int, default=ITERS_PER_CALL, help='iterations per timed call')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES), help='mixed precision (train.amp), e.g. bf16')
    parser.add_argument('--profile', action='store_true', help='print the top operators of the first variant')
    parser.add_argument('--out', default=RESULTS, help='folder for the json and png')
    args = parser.parse_args(argv)
    prepare_basicsr()
    flush_denormals()  # as slkd-train does: trained teachers are full of subnormal weights, slow on CPUs
    torch.set_num_threads(args.threads)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    load_before = os.getloadavg()
    result = {'recipe': osp.relpath(RECIPE, ROOT), 'batch': args.batch, 'amp': args.amp or False,
              'repeats': args.repeats, 'iters_per_call': args.iters_per_call,
              'variants': {name: VARIANTS[name] for name in args.variants},
              'term_variants': {name: TERM_VARIANTS[name] for name in args.variants if name in TERM_VARIANTS},
              'rows': []}
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        plan = [('shipped', shipped_options(p, checkpoint_dir), p, 'shipped')
                for p in args.patches if 'shipped' in args.setups]
        plan += [('tiny', tiny_options(name, checkpoint_dir), TINY_PATCH, name)
                 for name in args.tiny_teachers if 'tiny' in args.setups]
        for setup, opt, patch, teachers in plan:
            result['rows'].append(measure(setup, opt, patch, args, device, teachers))
            print(report(result['rows'][-1]), flush=True)
    result['machine'] = machine_record(load_before, device)
    os.makedirs(args.out, exist_ok=True)
    stem = 'step_cost' + (f'_{args.amp}' if args.amp else '')
    with open(osp.join(args.out, f'{stem}.json'), 'w') as f:
        json.dump(result, f, indent=2)
    plot(result['rows'], osp.join(args.out, f'{stem}.png'))
    return result


if __name__ == '__main__':
    main()
