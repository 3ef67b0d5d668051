"""Cost of the SLKD feature losses relative to a student network step.

Times forward + backward of ``BRISQUEFeatureLoss`` (L_NC, on the encoder taps) and ``PIQEFeatureLoss``
(L_ET, on the decoder taps) at the feature sizes of a Restormer-like SLKD run at patch 128, and divides by the
forward + backward of the student network on the same batch, in the same process. The losses see features after
the SCM, i.e. in the teacher's channel space (Restormer teacher, dim 48). Target: both losses together at most
10% of the student step.

    python bench/extractors.py [--repeats 5] [--threads N]

Prints the ratios and writes ``bench/results/extractors.json``.
"""
import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch

import slkd_basicsr  # noqa: F401  (registration, BasicSR compatibility)
from basicsr.archs import build_network
from basicsr.losses import build_loss

BATCH = 4
PATCH = 128
# Student: a narrow Restormer (SLKD's Res-SL shape).
STUDENT = {
    'type': 'Restormer',
    'inp_channels': 3,
    'out_channels': 3,
    'dim': 24,
    'num_blocks': [2, 2, 2, 2],
    'num_refinement_blocks': 1,
    'heads': [1, 2, 4, 8],
    'ffn_expansion_factor': 2.0,
    'bias': False,
    'LayerNorm_type': 'WithBias',
}
# (channels, side) of each tap after the SCM, i.e. the teacher's (Restormer dim 48) feature sizes at patch 128.
ENCODER_TAPS: List[Tuple[int, int]] = [(48, 128), (96, 64), (192, 32), (384, 16)]  # encoder_level1..3, latent
DECODER_TAPS: List[Tuple[int, int]] = [(192, 32), (96, 64), (96, 128)]  # decoder_level3..1
LOSSES = {'BRISQUEFeatureLoss': ENCODER_TAPS, 'PIQEFeatureLoss': DECODER_TAPS}


def student_step() -> Tuple[Callable[[], None], str]:
    """One forward + backward of the student, and where the built network class comes from."""
    net = build_network(STUDENT).train()
    lq = torch.rand(BATCH, 3, PATCH, PATCH)

    def step():
        net.zero_grad(set_to_none=True)
        net(lq).abs().mean().backward()

    return step, f'{type(net).__module__}.{type(net).__name__}'


def loss_step(loss_type: str, taps: List[Tuple[int, int]]) -> Callable[[], None]:
    """One forward + backward of a loss on random student (with grad) and teacher (without) features."""
    loss_fn = build_loss({'type': loss_type})
    student = [torch.randn(BATCH, c, s, s, requires_grad=True) for c, s in taps]
    teacher = [torch.randn(BATCH, c, s, s) for c, s in taps]
    return lambda: loss_fn(student, teacher).backward()


def interleaved_medians(steps: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    """Median wall time of each step, in seconds, timed in alternation so that they share the machine's load."""
    times = {name: [] for name in steps}
    for round_index in range(repeats + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_index:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    net_step, net_impl = student_step()
    steps = {'student': net_step}
    steps.update({loss_type: loss_step(loss_type, taps) for loss_type, taps in LOSSES.items()})
    seconds = interleaved_medians(steps, args.repeats)
    net_time = seconds.pop('student')
    print(f'student step (forward+backward, batch {BATCH}, patch {PATCH}): {net_time * 1e3:.1f} ms')
    result = {
        'device': f'cpu ({platform.processor() or platform.machine()}), {args.threads} threads',
        'torch': torch.__version__,
        'batch': BATCH,
        'patch': PATCH,
        'repeats': args.repeats,
        'student': STUDENT,
        'student_implementation': net_impl,
        'student_step_s': net_time,
        'losses': {},
    }
    for loss_type, taps in LOSSES.items():
        ratio = seconds[loss_type] / net_time
        result['losses'][loss_type] = {'taps': taps, 'step_s': seconds[loss_type], 'ratio': ratio}
        print(f'{loss_type:20s} taps {taps}: {seconds[loss_type] * 1e3:.1f} ms = {ratio:.1%} of the student step')
    total = sum(seconds.values())
    print(f'both losses: {total / net_time:.1%} of the student step (target <= 10%)')
    result['both_ratio'] = total / net_time

    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'extractors.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
