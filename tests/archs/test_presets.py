"""The student presets in options/presets: buildable, at most 15% of their teachers' parameters and FLOPs, and
with the documented taps at the teachers' resolutions."""
from os import path as osp

import pytest
import torch
import yaml
from basicsr.archs import build_network
from mmengine.analysis import FlopAnalyzer

from .spec_util import load_spec, network_opt

PRESET_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'options', 'presets')
RESTORMER_TAPS = [
    'encoder_level1', 'encoder_level2', 'encoder_level3', 'latent', 'decoder_level3', 'decoder_level2', 'decoder_level1'
]
NAFNET_TAPS = [
    'encoders.0', 'encoders.1', 'encoders.2', 'encoders.3', 'middle_blks', 'decoders.0', 'decoders.1', 'decoders.2',
    'decoders.3'
]
PAIRS = [
    ('res_sl', 'restormer_deraining', RESTORMER_TAPS),
    ('naf_sl', 'nafnet_sidd_width32', NAFNET_TAPS),
    ('naf_sl', 'nafnet_gopro_width64', NAFNET_TAPS),
    ('drs_sl', 'drsformer_deraining', RESTORMER_TAPS),
]


def load_preset(name: str) -> dict:
    with open(osp.join(PRESET_DIR, f'{name}.yml')) as f:
        return yaml.safe_load(f)['network_g']


def flops(net: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return FlopAnalyzer(net, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()


def tapped_sizes(net: torch.nn.Module, taps, x: torch.Tensor) -> dict:
    sizes = {}
    handles = [
        net.get_submodule(tap).register_forward_hook(lambda m, i, o, tap=tap: sizes.__setitem__(tap, o.shape[-2:]))
        for tap in taps
    ]
    with torch.no_grad():
        net(x)
    for handle in handles:
        handle.remove()
    return sizes


@pytest.mark.parametrize('preset, teacher, taps', PAIRS)
def test_preset_is_a_small_student_with_the_teachers_taps(preset, teacher, taps):
    spec = load_spec(teacher)
    student = build_network(load_preset(preset)).eval()
    assert type(student).__name__ == spec['arch']
    assert sum(p.numel() for p in student.parameters()) <= 0.15 * spec['num_params']

    teacher_net = build_network(network_opt(spec)).eval()
    # every op of these nets costs in proportion to H*W, so the ratio at 64 x 64 is the ratio at 256 x 256
    x = torch.rand(1, 3, 64, 64)
    assert flops(student, x) <= 0.15 * flops(teacher_net, x)
    assert tapped_sizes(student, taps, x) == tapped_sizes(teacher_net, taps, x)
