"""Cost of the SLKD feature losses relative to a student network step.

Times forward + backward of ``BRISQUEFeatureLoss`` (L_NC, on the encoder taps) and ``PIQEFeatureLoss``
(L_ET, on the decoder taps) at the feature sizes of a Restormer-like SLKD run at patch 128, and divides by the
forward + backward of the student network on the same batch, in the same process. The losses see features after
the SCM, i.e. in the teacher's channel space (Restormer teacher, dim 48). Each loss is timed with its defaults
(``sample_channels`` channels per level) and with every channel compared. Target: both losses together, with
their defaults, at most 10% of the student step.

    python bench/extractors.py [--repeats 5] [--threads N] [--out DIR]

Prints the ratios and writes ``extractors.json`` to ``--out`` (``bench/results``).
"""
import argparse
import json
import os
import statistics
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from _common import RESULTS, interleaved_times, machine_record
from slkd_basicsr.tools.process import prepare_basicsr  # before basicsr: its import needs our torchvision alias

# isort: split
from basicsr.archs import build_network
from basicsr.losses import build_loss

from slkd_basicsr.recipes.tiny_nets import tiny_restormer

BATCH = 4
PATCH = 128
# Student: a narrow Restormer (SLKD's Res-SL shape).
STUDENT = tiny_restormer(dim=24, num_blocks=[2, 2, 2, 2], heads=[1, 2, 4, 8])
# (channels, side) of each tap after the SCM, i.e. the teacher's (Restormer dim 48) feature sizes at patch 128.
ENCODER_TAPS: List[Tuple[int, int]] = [(48, 128), (96, 64), (192, 32), (384, 16)]  # encoder_level1..3, latent
DECODER_TAPS: List[Tuple[int, int]] = [(192, 32), (96, 64), (96, 128)]  # decoder_level3..1
LOSSES = {'BRISQUEFeatureLoss': ENCODER_TAPS, 'PIQEFeatureLoss': DECODER_TAPS}
# the losses' defaults (a random subset of channels per level and call) and every channel compared
VARIANTS = {'default': None, 'all': 0}


def student_step() -> Tuple[Callable[[], None], str]:
    """One forward + backward of the student, and where the built network class comes from."""
    net = build_network(STUDENT).train()
    lq = torch.rand(BATCH, 3, PATCH, PATCH)

    def step():
        net.zero_grad(set_to_none=True)
        net(lq).abs().mean().backward()

    return step, f'{type(net).__module__}.{type(net).__name__}'


def loss_step(loss_type: str, taps: List[Tuple[int, int]], sample_channels: Optional[int]) -> Callable[[], None]:
    """One forward + backward of a loss on random student (with grad) and teacher (without) features.

    ``sample_channels`` None keeps the loss's default; 0 compares every channel.
    """
    opt = {'type': loss_type}
    if sample_channels is not None:
        opt['sample_channels'] = sample_channels
    loss_fn = build_loss(opt)
    student = [torch.randn(BATCH, c, s, s, requires_grad=True) for c, s in taps]
    teacher = [torch.randn(BATCH, c, s, s) for c, s in taps]
    return lambda: loss_fn(student, teacher).backward()


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--out', default=RESULTS, help='folder for extractors.json')
    args = parser.parse_args(argv)
    prepare_basicsr()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    net_step, net_impl = student_step()
    steps = {'student': net_step}
    for variant, sample_channels in VARIANTS.items():
        steps.update({(loss_type, variant): loss_step(loss_type, taps, sample_channels)
                      for loss_type, taps in LOSSES.items()})
    load_before = os.getloadavg()
    seconds = {name: statistics.median(times) for name, times in interleaved_times(steps, args.repeats).items()}
    net_time = seconds.pop('student')
    print(f'student step (forward+backward, batch {BATCH}, patch {PATCH}): {net_time * 1e3:.1f} ms')
    result = {
        'machine': machine_record(load_before),
        'batch': BATCH,
        'patch': PATCH,
        'repeats': args.repeats,
        'student': STUDENT,
        'student_implementation': net_impl,
        'student_step_s': net_time,
        'variants': {},
    }
    for variant in VARIANTS:
        record = result['variants'][variant] = {'losses': {}}
        for loss_type, taps in LOSSES.items():
            step_s = seconds[(loss_type, variant)]
            record['losses'][loss_type] = {'taps': taps, 'step_s': step_s, 'ratio': step_s / net_time}
            print(f'{variant:8s} {loss_type:20s} taps {taps}: {step_s * 1e3:.1f} ms = {step_s / net_time:.1%} '
                  'of the student step')
        record['both_ratio'] = sum(seconds[(loss_type, variant)] for loss_type in LOSSES) / net_time
        print(f'{variant:8s} both losses: {record["both_ratio"]:.1%} of the student step (target <= 10%)')

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'extractors.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
