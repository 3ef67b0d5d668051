"""The taps and the probe that SLKDModel's build and the check before the experiment folder share."""
import pytest
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from helpers import TINY_RESTORMER, in_process, slkd_options
from slkd_basicsr.models.distill_taps import check_taps
from slkd_basicsr.models.feature_taps import TapError
from slkd_basicsr.models.slkd_model import optimizer_groups_on_meta

TINY_NAFNET = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1, 1, 1], 'middle_blk_num': 1,
               'dec_blk_nums': [1, 1, 1, 1]}
NAFNET_DECODER_PAIRS = [['decoders.1', 'decoder_level3'], ['decoders.2', 'decoder_level2'],
                        ['decoders.3', 'decoder_level1']]


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
    assert lr_keys == model.lr_option_keys[0] == ['train.optim_g.lr', 'train.lr_scm (unset: train.optim_g.lr)']


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
