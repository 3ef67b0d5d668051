"""What flows where in an SLKD step: which teacher sees which image, which features meet which loss, which term
reaches which student parameters, and the channel draws that keep arms of one seed paired."""
import copy
import os

import torch
from basicsr.models import build_model
from torch import nn

from helpers import in_process, slkd_options, train_batch, train_steps

ENCODER_TAPS = ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent']
DECODER_TAPS = ['decoder_level3', 'decoder_level2', 'decoder_level1']
TERMS = {'l_kd': 'kd_opt', 'l_nc': 'nc_opt', 'l_et': 'et_opt'}


def _capture(net: nn.Module, names):
    """Forward hooks recording the outputs of ``names`` in ``net``; returns (records, handles)."""
    records, handles = {}, []
    for name in names:
        handles.append(net.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: records.__setitem__(name, out.detach().clone())))
    return records, handles


class _Recorder(nn.Module):
    """Wraps a loss, recording the (student, teacher) arguments of its last call."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss
        self.args = None

    def forward(self, student, teacher):
        self.args = (student, teacher)
        return self.loss(student, teacher)


def test_each_teacher_sees_its_image_and_feeds_its_loss(image_pairs, teachers):
    """Teacher A sees lq and its encoder features reach L_NC; Teacher B sees gt and its decoder features L_ET."""
    opt = in_process(slkd_options(image_pairs, teachers))
    model = build_model(opt)
    batch = train_batch(opt)
    seen = {}
    for name in ('teacher_a', 'teacher_b'):
        getattr(model, name).register_forward_pre_hook(lambda _m, args, name=name: seen.__setitem__(name, args[0]))
    enc, _ = _capture(model.teacher_a, ENCODER_TAPS)
    dec, _ = _capture(model.teacher_b, DECODER_TAPS)
    model.cri_nc, model.cri_et, model.cri_kd = _Recorder(model.cri_nc), _Recorder(model.cri_et), _Recorder(model.cri_kd)
    model.feed_data(batch)
    model.optimize_parameters(1)

    assert torch.equal(seen['teacher_a'], batch['lq']) and torch.equal(seen['teacher_b'], batch['gt'])
    nc_teacher, et_teacher = model.cri_nc.args[1], model.cri_et.args[1]
    assert len(nc_teacher) == len(ENCODER_TAPS) and len(et_teacher) == len(DECODER_TAPS)
    for got, name in zip(nc_teacher, ENCODER_TAPS):
        assert torch.equal(got, enc[name]), name
    for got, name in zip(et_teacher, DECODER_TAPS):
        assert torch.equal(got, dec[name]), name
    student_out, teacher_out = model.cri_kd.args
    assert student_out is model.output and torch.equal(teacher_out, model.teacher_a(batch['lq']))


def _grads_of_one_term(image_pairs, teachers, term):
    """Student and SCM gradients of one step whose only non-zero term is ``term`` (the pixel loss weighs 0)."""
    opt = in_process(slkd_options(image_pairs, teachers))
    for other in set(TERMS.values()) - {TERMS[term]}:
        del opt['train'][other]
    opt['train']['pixel_opt']['loss_weight'] = 0.0
    model = build_model(opt)
    model.feed_data(train_batch(opt))
    model.optimize_parameters(1)
    student = model.get_bare_model(model.net_g)

    def reached(module: nn.Module) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    return model, student, reached


def test_image_term_reaches_the_whole_student(image_pairs, teachers):
    model, student, reached = _grads_of_one_term(image_pairs, teachers, 'l_kd')
    assert model.net_scm is None
    for name in ('patch_embed', 'encoder_level1', 'decoder_level1', 'refinement', 'output'):
        assert reached(student.get_submodule(name)), name


def test_encoder_term_reaches_the_encoder_and_the_scm_only(image_pairs, teachers):
    model, student, reached = _grads_of_one_term(image_pairs, teachers, 'l_nc')
    assert reached(model.net_scm)
    assert reached(student.get_submodule('encoder_level1')) and reached(student.get_submodule('latent'))
    for name in ('decoder_level3', 'decoder_level1', 'refinement', 'output'):
        assert not reached(student.get_submodule(name)), name


def test_decoder_term_reaches_the_decoder_and_the_scm_not_the_output_head(image_pairs, teachers):
    model, student, reached = _grads_of_one_term(image_pairs, teachers, 'l_et')
    assert reached(model.net_scm)
    assert reached(student.get_submodule('decoder_level1')) and reached(student.get_submodule('decoder_level3'))
    for name in ('refinement', 'output'):
        assert not reached(student.get_submodule(name)), name


def test_gradient_shares_are_logged_at_print_freq(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['log_grad_shares'] = True
    opt['logger']['print_freq'] = 2
    model = build_model(opt)
    logs = train_steps(model, train_batch(opt), 2)
    assert not any(key.startswith('share_') for key in logs[0])
    shares = {key: value for key, value in logs[1].items() if key.startswith('share_')}
    assert set(shares) == {'share_l_kd', 'share_l_nc', 'share_l_et'}
    assert all(0 < value < float('inf') for value in shares.values())


def test_detached_student_output_shows_a_zero_share(image_pairs, teachers):
    """The share is measured on the student's parameters: a term cut off from them reads 0."""
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['log_grad_shares'] = True
    opt['logger']['print_freq'] = 1
    model = build_model(opt)
    kd = model.cri_kd
    model.cri_kd = lambda student, teacher: kd(student.detach(), teacher)
    log = train_steps(model, train_batch(opt), 1)[0]
    assert log['share_l_kd'] == 0 and log['share_l_nc'] > 0


def _sampled(opt):
    opt = copy.deepcopy(opt)
    for key in ('nc_opt', 'et_opt'):
        opt['train'][key]['sample_channels'] = 2
    return opt


def test_distillation_leaves_the_global_random_stream_to_data_and_init(image_pairs, teachers):
    """An SLKD run and the student alone, same seed: same student init, same global random state after building
    and after steps (the channel draws use the model's own generator)."""
    slkd = in_process(_sampled(slkd_options(image_pairs, teachers)))
    alone = copy.deepcopy(slkd)
    for key in TERMS.values():
        del alone['train'][key]
    batch = train_batch(slkd)
    states, inits = [], []
    for opt in (slkd, alone):
        torch.manual_seed(7)
        model = build_model(opt)
        inits.append({k: v.clone() for k, v in model.net_g.state_dict().items()})
        states.append(torch.get_rng_state())
        train_steps(model, batch, 2)
        states.append(torch.get_rng_state())
    assert all(torch.equal(inits[0][k], inits[1][k]) for k in inits[0])
    assert torch.equal(states[0], states[2]) and torch.equal(states[1], states[3])


def test_channel_generator_is_per_rank_and_resumes(image_pairs, teachers, tmp_path):
    opt = in_process(_sampled(slkd_options(image_pairs, teachers)))
    paths = {key: str(tmp_path / key) for key in ('models', 'training_states')}
    for folder in paths.values():
        os.makedirs(folder)
    opt['path'].update(paths)
    model = build_model(opt)
    assert model.cri_nc.generator is model.channel_rng and model.cri_et.generator is model.channel_rng
    fresh = model.channel_rng.get_state()
    other_rank = build_model({**copy.deepcopy(opt), 'rank': 1})
    assert not torch.equal(other_rank.channel_rng.get_state(), fresh)

    train_steps(model, train_batch(opt), 2)
    assert not torch.equal(model.channel_rng.get_state(), fresh)  # the steps drew channels
    model.save_training_state(0, 2)
    state = torch.load(os.path.join(paths['training_states'], '2.state'), weights_only=True)
    assert len(state['channel_rng']) == 1
    resumed = build_model(copy.deepcopy(opt))
    resumed.resume_training(state)
    assert torch.equal(resumed.channel_rng.get_state(), model.channel_rng.get_state())


def test_channel_draws_follow_manual_seed(image_pairs, teachers):
    opt = in_process(_sampled(slkd_options(image_pairs, teachers)))
    first = build_model(opt).channel_rng.get_state()
    assert torch.equal(build_model(opt).channel_rng.get_state(), first)
    opt['manual_seed'] += 1
    assert not torch.equal(build_model(opt).channel_rng.get_state(), first)
