"""SLKD with every supported family as teachers and student, and across families (Restormer -> NAFNet).

Tiny networks of each family use the taps of the family's shipped recipe (``options/*.yml``), so the tests
check that those module names exist, return feature maps, and train with all four loss terms; with no taps in
the options, the built networks' ``default_taps`` are used (paired by position across families).
"""
from os import path as osp

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.models import build_model

from helpers import REPO_ROOT, TINY_RESTORMER, in_process, save_checkpoint, slkd_options, train_batch, train_steps
from slkd_basicsr.models.feature_taps import TapError

TINY_STUDENTS = {
    'Restormer': TINY_RESTORMER,
    'DRSformer': {
        'type': 'DRSformer',
        'dim': 8,
        'num_blocks': [1, 1, 1, 1],
        'heads': [1, 1, 2, 2],
    },
    'NAFNet': {
        'type': 'NAFNet',
        'width': 8,
        'enc_blk_nums': [1, 1, 1, 1],
        'middle_blk_num': 1,
        'dec_blk_nums': [1, 1, 1, 1],
    },
    # img_size 64 and win_size 4 pad inputs to a multiple of 64, so the 1/16 bottleneck tap is 4x4
    'Uformer': {
        'type': 'Uformer',
        'img_size': 64,
        'embed_dim': 8,
        'win_size': 4,
        'depths': [1] * 9,
        'modulator': True,
    },
}
WIDTH_KEYS = {'Restormer': 'dim', 'DRSformer': 'dim', 'NAFNet': 'width', 'Uformer': 'embed_dim'}
RECIPES = {
    'Restormer': 'slkd_derain.yml',
    'DRSformer': 'slkd_derain_drsformer.yml',
    'NAFNet': 'slkd_denoise_nafnet.yml',
    'Uformer': 'slkd_denoise_uformer.yml',
}


def _recipe(name):
    with open(osp.join(REPO_ROOT, 'options', name)) as f:
        return yaml.safe_load(f)


def _tiny_teacher(family, global_residual):
    student = TINY_STUDENTS[family]
    width = WIDTH_KEYS[family]
    return {**student, width: 2 * student[width], 'global_residual': global_residual}


def _options(image_pairs, tmp_path, student, teacher_family, recipe):
    """Tiny SLKD options: ``student`` network, tiny teachers of ``teacher_family``, the recipe's taps and keys."""
    recipe_opt = _recipe(recipe)
    torch.manual_seed(0)
    checkpoints = {}
    for which, residual in (('a', True), ('b', False)):
        param_key = recipe_opt['path'].get(f'param_key_teacher_{which}', 'params')
        net = build_network(_tiny_teacher(teacher_family, residual))
        checkpoints[which] = save_checkpoint(net, str(tmp_path / f'teacher_{which}.pth'), param_key)
    opt = slkd_options(image_pairs, checkpoints)
    opt.update(network_g=dict(student), network_teacher_a=_tiny_teacher(teacher_family, True),
               network_teacher_b=_tiny_teacher(teacher_family, False))
    for which in ('a', 'b'):
        opt['path'][f'param_key_teacher_{which}'] = recipe_opt['path'].get(f'param_key_teacher_{which}', 'params')
    opt['distill'].update({k: recipe_opt['distill'][k] for k in ('encoder_taps', 'decoder_taps', 'scm_resize_mode')})
    return in_process(opt)


@pytest.mark.parametrize('family', list(TINY_STUDENTS))
def test_family_trains_as_teachers_and_student(family, image_pairs, tmp_path):
    opt = _options(image_pairs, tmp_path, TINY_STUDENTS[family], family, RECIPES[family])
    model = build_model(opt)
    before = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}
    logs = train_steps(model, train_batch(opt), 3)
    assert {'l_pix', 'l_kd', 'l_nc', 'l_et', 'l_total'} <= set(logs[-1])
    assert all(torch.isfinite(torch.tensor(log['l_total'])) for log in logs)
    after = model.net_g.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())


def test_restormer_teachers_distil_into_nafnet_student(image_pairs, tmp_path):
    opt = _options(image_pairs, tmp_path, TINY_STUDENTS['NAFNet'], 'Restormer', 'slkd_derain_restormer_to_nafnet.yml')
    model = build_model(opt)
    batch = train_batch(opt)

    # the recipe pairs taps at different resolutions: the SCM must resize those to the teacher's size
    with torch.no_grad():
        model.net_g(batch['lq'])
        model.teacher_a(batch['lq'])
        model.teacher_b(batch['gt'])
        student = model.student_taps.features()
        teacher = model.teacher_a_taps.features() + model.teacher_b_taps.features()
        converted = model.net_scm(student, [t.shape[-2:] for t in teacher])
    for taps in (model.student_taps, model.teacher_a_taps, model.teacher_b_taps):
        taps.clear()
    assert any(s.shape[-2:] != t.shape[-2:] for s, t in zip(student, teacher))
    assert [c.shape for c in converted] == [t.shape for t in teacher]

    logs = train_steps(model, batch, 15)
    assert all(torch.isfinite(torch.tensor(log['l_total'])) for log in logs)
    first, last = sum(log['l_total'] for log in logs[:3]) / 3, sum(log['l_total'] for log in logs[-3:]) / 3
    assert last < 0.8 * first


@pytest.mark.parametrize('family', ['NAFNet', 'Uformer'])
def test_family_trains_with_its_default_taps(family, image_pairs, tmp_path):
    opt = _options(image_pairs, tmp_path, TINY_STUDENTS[family], family, RECIPES[family])
    del opt['distill']['encoder_taps'], opt['distill']['decoder_taps']
    model = build_model(opt)
    defaults = model.get_bare_model(model.net_g).default_taps
    assert model.student_taps.names == defaults['encoder'] + defaults['decoder']
    assert model.teacher_a_taps.names == defaults['encoder']
    assert model.teacher_b_taps.names == defaults['decoder']
    logs = train_steps(model, train_batch(opt), 2)
    assert {'l_nc', 'l_et'} <= set(logs[-1])
    assert all(torch.isfinite(torch.tensor(log['l_total'])) for log in logs)


def test_cross_family_default_taps_pair_by_position_or_ask_for_pairs(image_pairs, tmp_path):
    opt = _options(image_pairs, tmp_path, TINY_STUDENTS['NAFNet'], 'Restormer', 'slkd_derain_restormer_to_nafnet.yml')
    decoder_pairs = opt['distill'].pop('decoder_taps')
    del opt['distill']['encoder_taps']
    # NAFNet has 4 default decoder taps, Restormer 3: no pairing by position
    with pytest.raises(TapError, match=r'NAFNet and teacher B Restormer differ in number.*distill\.decoder_taps'):
        build_model(opt)

    opt['distill']['decoder_taps'] = decoder_pairs
    model = build_model(opt)
    nafnet = model.get_bare_model(model.net_g).default_taps
    restormer = model.get_bare_model(model.teacher_a).default_taps
    assert model.student_taps.names[:4] == nafnet['encoder']
    assert model.teacher_a_taps.names == restormer['encoder']
    logs = train_steps(model, train_batch(opt), 2)
    assert all(torch.isfinite(torch.tensor(log['l_total'])) for log in logs)
