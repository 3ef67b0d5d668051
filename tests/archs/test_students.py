"""The compact students ResSL, NAFSL, DRSSL and UforSL: whole networks from their type alone, at most 15% of their
teachers' parameters and FLOPs, with the documented taps at the teachers' resolutions, and the parent arch's state
dict, so that checkpoints load into either class."""
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from mmengine.analysis import FlopAnalyzer

from .spec_util import load_spec, load_with_basicsr, network_opt, state_dict_shapes

RESTORMER_TAPS = [
    'encoder_level1', 'encoder_level2', 'encoder_level3', 'latent', 'decoder_level3', 'decoder_level2', 'decoder_level1'
]
NAFNET_TAPS = [
    'encoders.0', 'encoders.1', 'encoders.2', 'encoders.3', 'middle_blks', 'decoders.0', 'decoders.1', 'decoders.2',
    'decoders.3'
]
PAIRS = [
    ('ResSL', 'restormer_deraining', RESTORMER_TAPS),
    ('NAFSL', 'nafnet_sidd_width32', NAFNET_TAPS),
    ('NAFSL', 'nafnet_gopro_width64', NAFNET_TAPS),
    ('DRSSL', 'drsformer_deraining', RESTORMER_TAPS),
]
STUDENTS = {'ResSL': 'Restormer', 'NAFSL': 'NAFNet', 'DRSSL': 'DRSformer', 'UforSL': 'Uformer'}


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


def parent_twin(student: torch.nn.Module) -> torch.nn.Module:
    """The parent arch built with the student's preset: the configuration the student stands for."""
    return build_network({'type': STUDENTS[type(student).__name__], **student.preset})


@pytest.mark.parametrize('student, teacher, taps', PAIRS)
def test_student_is_small_with_the_teachers_taps(student, teacher, taps):
    spec = load_spec(teacher)
    student = build_network({'type': student}).eval()
    assert type(student).__name__ != spec['arch'] and isinstance(student, ARCH_REGISTRY.get(spec['arch']))
    assert sum(p.numel() for p in student.parameters()) <= 0.15 * spec['num_params']
    assert set(student.default_taps['encoder'] + student.default_taps['decoder']) <= set(taps)

    teacher_net = build_network(network_opt(spec)).eval()
    # every op of these nets costs in proportion to H*W, so the ratio at 64 x 64 is the ratio at 256 x 256
    x = torch.rand(1, 3, 64, 64)
    assert flops(student, x) <= 0.15 * flops(teacher_net, x)
    assert tapped_sizes(student, taps, x) == tapped_sizes(teacher_net, taps, x)


def test_ufor_sl_is_a_small_uformer():
    student = build_network({'type': 'UforSL'})
    assert isinstance(student, ARCH_REGISTRY.get('Uformer'))
    params = sum(p.numel() for p in student.parameters())
    assert params <= 0.15 * load_spec('uformer_b')['num_params']
    assert student.default_taps == ARCH_REGISTRY.get('Uformer').default_taps


@pytest.mark.parametrize('student', list(STUDENTS))
def test_checkpoints_load_into_student_and_parent(student, tmp_path):
    torch.manual_seed(0)
    net = build_network({'type': student}).eval()
    twin = parent_twin(net).eval()
    assert type(twin).__name__ == STUDENTS[student]
    assert state_dict_shapes(net) == state_dict_shapes(twin)
    assert net.default_taps == twin.default_taps

    weights = {key: torch.randn_like(value) if value.is_floating_point() else value
               for key, value in net.state_dict().items()}
    torch.save({'params': weights}, str(tmp_path / 'student.pth'))
    load_with_basicsr(twin, str(tmp_path / 'student.pth'))
    torch.save({'params': twin.state_dict()}, str(tmp_path / 'parent.pth'))
    load_with_basicsr(net, str(tmp_path / 'parent.pth'))
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        out = net(x)
        torch.testing.assert_close(out, twin(x), rtol=0, atol=0)
    assert out.shape == x.shape


def test_keyword_overrides_the_preset():
    net = build_network({'type': 'ResSL', 'LayerNorm_type': 'BiasFree', 'num_refinement_blocks': 2})
    twin = build_network({'type': 'Restormer', **net.preset, 'LayerNorm_type': 'BiasFree', 'num_refinement_blocks': 2})
    assert state_dict_shapes(net) == state_dict_shapes(twin)
    assert state_dict_shapes(net) != state_dict_shapes(build_network({'type': 'ResSL'}))
    assert not any(key.endswith('norm1.body.bias') for key in net.state_dict())
    assert len(net.refinement) == 2
