"""What cuts the teachers' cost: a sub-batch, a crop, every k-th iteration, autocast, forward passes that stop at
the last tap. Each test checks what the teachers see and run, and what the terms compare."""
import pytest
import torch
from basicsr.models import build_model

from helpers import in_process, slkd_options, train_batch, train_steps
from slkd_basicsr.checks.options import options_problems
from slkd_basicsr.models.feature_taps import TapError


def _model(image_pairs, teachers, train=None, patch=None, **distill):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill'].update(distill)
    if patch:
        opt['datasets']['train']['gt_size'] = patch
    opt['train'].update(train or {})
    return build_model(opt)


def _record_inputs(net, log, key):
    """Log the batch size of every call of ``net`` (before it runs: a teacher may stop at its last tap)."""
    net.register_forward_pre_hook(lambda module, inputs: log.setdefault(key, []).append(inputs[0].shape[0]))


def _batch(model, size=4):
    return train_batch(model.opt, size)


def test_teacher_batch_feeds_the_teachers_a_sub_batch_and_the_pixel_term_all(image_pairs, teachers):
    model = _model(image_pairs, teachers, teacher_batch=1)
    seen = {}
    for name in ('teacher_a', 'teacher_b', 'net_g'):
        _record_inputs(getattr(model, name), seen, name)
    batch = _batch(model)
    model.feed_data(batch)
    losses = dict(model.compute_losses(1))
    assert seen == {'teacher_a': [1], 'teacher_b': [1], 'net_g': [4]}
    with torch.no_grad():
        expected_kd = model.cri_kd(model.output[:1].float(), model.teacher_a(model.lq[:1]))
        expected_pix = model.cri_pix(model.output.float(), model.gt)
    assert torch.allclose(losses['l_kd'], expected_kd) and torch.allclose(losses['l_pix'], expected_pix)


def test_feature_terms_of_a_sub_batch_reach_only_its_samples(image_pairs, teachers):
    """The student's features of the samples the teachers did not see get no gradient from L_NC / L_ET."""
    model = _model(image_pairs, teachers, teacher_batch=1)
    model.feed_data(_batch(model))
    losses = dict(model.compute_losses(1))
    features = model.student_taps.features()
    grads = torch.autograd.grad(losses['l_nc'] + losses['l_et'], features, allow_unused=True)
    used = [g for g in grads if g is not None]
    assert used and all(g[1:].abs().sum() == 0 and g[:1].abs().sum() > 0 for g in used)


def test_every_k_runs_the_teachers_every_kth_iteration_at_k_times_the_weight(image_pairs, teachers):
    model = _model(image_pairs, teachers, every=2)
    seen = {}
    for name in ('teacher_a', 'teacher_b'):
        _record_inputs(getattr(model, name), seen, name)
    assert [model.distillation_weight(it) for it in (1, 2, 3, 4)] == [0.0, 2.0, 0.0, 2.0]
    logs = train_steps(model, _batch(model, 2), 4)
    assert seen == {'teacher_a': [2, 2], 'teacher_b': [2, 2]}
    assert [sorted(log) for log in logs[::2]] == [['l_pix', 'l_total', 'nonfinite_steps']] * 2
    assert all({'l_kd', 'l_nc', 'l_et'} <= set(log) for log in logs[1::2])


def test_teacher_amp_runs_only_the_teachers_under_autocast(image_pairs, teachers):
    model = _model(image_pairs, teachers, teacher_amp='bf16')
    dtypes = {}
    for name in ('teacher_a', 'teacher_b', 'net_g'):
        for module in getattr(model, name).modules():
            if isinstance(module, torch.nn.Conv2d):
                module.register_forward_hook(
                    lambda module, inputs, output, name=name: dtypes.setdefault(name, set()).add(output.dtype))
    train_steps(model, _batch(model, 2), 1)
    assert dtypes == {'teacher_a': {torch.bfloat16}, 'teacher_b': {torch.bfloat16}, 'net_g': {torch.float32}}


@pytest.mark.parametrize('kd', [True, False])
def test_a_teacher_whose_output_is_unused_stops_at_its_last_tap(image_pairs, teachers, kd):
    """Teacher B's output is never read, Teacher A's only by L_KL: their layers after the last tap do not run."""
    opt = in_process(slkd_options(image_pairs, teachers))
    if not kd:
        opt['train'].pop('kd_opt')
    model = build_model(opt)
    ran = []
    for name in ('teacher_a', 'teacher_b'):
        getattr(model, name).output.register_forward_hook(lambda module, inputs, output, name=name: ran.append(name))
    logs = train_steps(model, _batch(model, 2), 1)
    assert ran == (['teacher_a'] if kd else [])
    assert {'l_nc', 'l_et'} <= set(logs[0]) and ('l_kd' in logs[0]) == kd
    model.feed_data(_batch(model, 2))
    assert 'l_pix' in dict(model.compute_losses(2))  # the taps are usable again after a stopped pass


def test_teacher_crop_feeds_the_teachers_a_crop_and_the_terms_compare_its_region(image_pairs, teachers):
    """The teachers see the crop of the first sample; L_KL compares the student's output there; L_NC / L_ET reach
    the student's features only inside the region, the pixel term the whole batch."""
    model = _model(image_pairs, teachers, patch=48, teacher_batch=1, teacher_crop=32)
    seen = {}
    for name in ('teacher_a', 'teacher_b', 'net_g'):
        getattr(model, name).register_forward_pre_hook(
            lambda module, inputs, name=name: seen.setdefault(name, []).append(tuple(inputs[0].shape)))
    model.feed_data(_batch(model))  # 48 px patches: the crop is rows and columns 0..32 (the alignment grid)
    losses = dict(model.compute_losses(1))
    assert seen == {'teacher_a': [(1, 3, 32, 32)], 'teacher_b': [(1, 3, 32, 32)], 'net_g': [(4, 3, 48, 48)]}
    with torch.no_grad():
        expected_kd = model.cri_kd(model.output[:1, :, :32, :32].float(), model.teacher_a(model.lq[:1, :, :32, :32]))
    assert torch.allclose(losses['l_kd'], expected_kd)
    # the last tap of each term (the others also reach it through later taps): inside the region only
    features = model.student_taps.features()
    for term, feature in (('l_nc', features[model.num_encoder_taps - 1]), ('l_et', features[-1])):
        grad, = torch.autograd.grad(losses[term], feature, retain_graph=True)
        inside = -(-32 * feature.shape[-1] // 48)  # the crop's last map column, rounded outward
        assert grad[:1, :, :inside, :inside].abs().sum() > 0, term
        assert grad[1:].abs().sum() == 0 and grad[:, :, inside:].abs().sum() == 0, term
        assert grad[:, :, :, inside:].abs().sum() == 0, term


def test_a_crop_too_small_for_the_teachers_taps_is_refused_when_the_model_is_built(image_pairs, teachers):
    with pytest.raises(TapError, match=r'distill.teacher_crop: on a 16-pixel crop the teacher A encoder tap '
                                       r'\S+ is 2 x 2; the feature losses need 4 x 4'):
        _model(image_pairs, teachers, teacher_crop=16)


def test_a_crop_the_teachers_would_pad_is_refused_when_the_model_is_built(image_pairs, teachers):
    """Restormer pads its input to a multiple of 8: on a 20-pixel crop its taps would show 4 padded pixels."""
    with pytest.raises(TapError, match=r'distill.teacher_crop: Restormer pads a 20-pixel crop to its size multiple'):
        _model(image_pairs, teachers, teacher_crop=20)


def test_cost_options_are_checked(image_pairs, teachers):
    opt = slkd_options(image_pairs, teachers)
    opt['distill'].update(teacher_batch=0, every=1.5, teacher_amp='half', teacher_crop=1.5)
    problems = options_problems(opt, is_train=True)
    assert 'distill.teacher_batch: must be a number of samples (>= 1) or a share of the batch in (0, 1), got 0.' \
        in problems
    assert any(p.startswith('distill.every: ') for p in problems)
    assert 'distill.teacher_crop: must be a side in pixels (>= 1) or a share of the patch side in (0, 1), got 1.5.' \
        in problems
    assert "distill.teacher_amp: must be bf16, fp16, auto (bf16 where the device has it natively) or false (mixed " \
        "precision off), got 'half'." in problems
