"""The taps and the probe that SLKDModel's build and the check before the experiment folder share."""
import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from helpers import TINY_RESTORMER, in_process, save_checkpoint, slkd_options, train_batch
from slkd_basicsr.models.distill_taps import check_taps, resolve_taps, tap_networks
from slkd_basicsr.models.feature_taps import TapError
from slkd_basicsr.models.slkd_model import optimizer_groups_on_meta

TINY_NAFNET = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1, 1, 1], 'middle_blk_num': 1,
               'dec_blk_nums': [1, 1, 1, 1]}
NAFNET_DECODER_PAIRS = [['decoders.1', 'decoder_level3'], ['decoders.2', 'decoder_level2'],
                        ['decoders.3', 'decoder_level1']]


def nafnet(levels: int, **overrides) -> dict:
    """Options of a tiny NAFNet of ``levels`` levels."""
    return {**TINY_NAFNET, 'enc_blk_nums': [1] * levels, 'dec_blk_nums': [1] * levels, **overrides}


# the default taps of each family and depth: (network options, encoder taps, decoder taps)
DEFAULTS = {
    'NAFNet, 2 levels': (nafnet(2), ['encoders.0', 'encoders.1'], ['decoders.0', 'decoders.1']),
    'NAFNet, 3 levels': (nafnet(3), ['encoders.0', 'encoders.1', 'encoders.2'],
                         ['decoders.0', 'decoders.1', 'decoders.2']),
    'NAFNet, 4 levels': (TINY_NAFNET, ['encoders.0', 'encoders.1', 'encoders.2', 'encoders.3'],
                         ['decoders.0', 'decoders.1', 'decoders.2', 'decoders.3']),
    'NAFSL, 2 levels': ({'type': 'NAFSL', 'width': 8, 'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1]},
                        ['encoders.0', 'encoders.1'], ['decoders.0', 'decoders.1']),
    'Restormer': (TINY_RESTORMER, ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent'],
                  ['decoder_level3', 'decoder_level2', 'decoder_level1']),
    'ResSL': ({'type': 'ResSL'}, ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent'],
              ['decoder_level3', 'decoder_level2', 'decoder_level1']),
    'DRSformer': ({'type': 'DRSformer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'heads': [1, 1, 2, 2]},
                  ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent'],
                  ['decoder_level3', 'decoder_level2', 'decoder_level1']),
    'Uformer': ({'type': 'Uformer', 'img_size': 64, 'embed_dim': 8, 'win_size': 4, 'depths': [1] * 9},
                ['encoderlayer_0', 'encoderlayer_1', 'encoderlayer_2', 'encoderlayer_3', 'conv'],
                ['decoderlayer_0', 'decoderlayer_1', 'decoderlayer_2', 'decoderlayer_3']),
}


@pytest.mark.parametrize('student, decoder_taps', [(TINY_RESTORMER, None), (TINY_NAFNET, NAFNET_DECODER_PAIRS)],
                         ids=['same family', 'NAFNet student'])
def test_the_check_on_meta_finds_the_channels_the_built_model_uses(image_pairs, teachers, student, decoder_taps):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['network_g'] = dict(student)
    if decoder_taps:
        opt['distill']['decoder_taps'] = decoder_taps
    student_ch, teacher_ch = check_taps(opt)
    model = build_model(opt)
    scm = model.get_bare_model(model.net_scm)
    assert student_ch == [conv.in_channels for conv in scm.convs]
    assert teacher_ch == [conv.out_channels for conv in scm.convs]
    groups, lr_keys = optimizer_groups_on_meta(opt)
    assert [[p.shape for p in group['params']] for group in groups] == \
        [[p.shape for p in group['params']] for group in model.optimizer_g.param_groups]
    assert lr_keys == model.lr_option_keys()[0] == ['train.optim_g.lr', 'train.lr_scm (unset: train.optim_g.lr)']


@pytest.mark.parametrize('edit, expected', [
    (lambda opt: opt['network_g'].update(inp_channels=1, global_residual=False),
     r'teacher \(Restormer\) takes 3 input channels but sees lq with 1'),
    (lambda opt: opt['network_g'].update(out_channels=1, global_residual=False),
     r'teacher output \(1, 3, 32, 32\) and student output \(1, 1, 32, 32\) differ'),
    (lambda opt: opt['distill'].update(teacher_crop=16),
     r'distill.teacher_crop: on a 16-pixel crop the teacher A encoder tap latent is 2 x 2'),
], ids=['input channels', 'output channels', 'crop too small'])
def test_the_check_refuses_what_the_build_refuses_with_the_same_message(image_pairs, teachers, edit, expected):
    opt = in_process(slkd_options(image_pairs, teachers))
    edit(opt)
    with pytest.raises(TapError, match=expected) as early:
        check_taps(opt)
    with pytest.raises(TapError) as built:
        build_model(opt)
    assert str(early.value) == str(built.value)


def test_without_feature_terms_there_is_nothing_to_check(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['encoder_taps'] = ['no_such_module']
    del opt['train']['nc_opt'], opt['train']['et_opt']
    assert check_taps(opt) is None
    groups, lr_keys = optimizer_groups_on_meta(opt)
    assert len(groups) == 1 and lr_keys == ['train.optim_g.lr']
    assert check_taps({**opt, 'model_type': 'SRModel', 'train': slkd_options(image_pairs, teachers)['train']}) is None


class _ReadsValues(nn.Module):
    """A student whose forward branches on its input's values, which a tensor on the meta device does not have."""
    default_taps = {'encoder': ['conv'], 'decoder': ['conv']}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x) if x.mean() > -1 else x


def test_a_network_that_cannot_run_on_meta_is_left_to_the_build(image_pairs, teachers, monkeypatch):
    monkeypatch.setitem(ARCH_REGISTRY._obj_map, '_ReadsValues', _ReadsValues)
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['network_g'] = {'type': '_ReadsValues'}
    opt['distill'].update(encoder_taps=[['conv', 'encoder_level1']], decoder_taps=[['conv', 'decoder_level1']])
    assert check_taps(opt) is None
    assert optimizer_groups_on_meta(opt) is None
    model = build_model(opt)  # probes the networks for real
    assert model.student_taps.names == ['conv', 'conv'] and len(model.get_bare_model(model.net_scm).convs) == 2


@pytest.mark.parametrize('case', list(DEFAULTS))
def test_default_taps_of_every_family_and_depth_resolve(case):
    network, encoder, decoder = DEFAULTS[case]
    student, teacher = build_network(dict(network)), build_network(dict(network))
    for kind, expected in (('encoder', encoder), ('decoder', decoder)):
        pairs, note = resolve_taps({}, kind, student, teacher, 'teacher A')
        assert pairs == [(name, name) for name in expected] and note is None
    taps = tap_networks({}, student, teacher, teacher)  # finds every module or raises TapError
    assert taps.student.names == encoder + decoder and taps.num_encoder == len(encoder)


def test_a_nafnet_student_of_other_depth_pairs_with_restormer_teachers_by_position():
    student, teacher = build_network(nafnet(3)), build_network(dict(TINY_RESTORMER))
    pairs, note = resolve_taps({}, 'decoder', student, teacher, 'teacher B')
    assert pairs == [('decoders.0', 'decoder_level3'), ('decoders.1', 'decoder_level2'),
                     ('decoders.2', 'decoder_level1')]
    assert 'paired by position' in note
    with pytest.raises(TapError, match=r"NAFNet and teacher A Restormer differ in number \(\['encoders.0', "
                                       r"'encoders.1', 'encoders.2'\] vs"):
        resolve_taps({}, 'encoder', student, teacher, 'teacher A')


def test_a_two_level_nafnet_run_trains_with_no_taps_listed(image_pairs, tmp_path):
    torch.manual_seed(0)
    checkpoints = {which: save_checkpoint(build_network(nafnet(2, width=16, global_residual=residual)),
                                          str(tmp_path / f'teacher_{which}.pth'))
                   for which, residual in (('a', True), ('b', False))}
    opt = in_process(slkd_options(image_pairs, checkpoints))
    opt.update(network_g=nafnet(2), network_teacher_a=nafnet(2, width=16, global_residual=True),
               network_teacher_b=nafnet(2, width=16, global_residual=False))
    assert not {'encoder_taps', 'decoder_taps'} & set(opt['distill'])
    assert check_taps(opt) == ([8, 16, 16, 8], [16, 32, 32, 16])
    model = build_model(opt)
    assert model.student_taps.names == ['encoders.0', 'encoders.1', 'decoders.0', 'decoders.1']
    assert model.teacher_a_taps.names == ['encoders.0', 'encoders.1']
    assert model.teacher_b_taps.names == ['decoders.0', 'decoders.1']
    model.feed_data(train_batch(opt))
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert {'l_nc', 'l_et'} <= set(log) and all(torch.isfinite(torch.tensor(log[k])) for k in ('l_nc', 'l_et'))
