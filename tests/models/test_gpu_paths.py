"""The GPU paths of an SLKD step, checked on a CPU-only machine.

A model built on the CPU is moved to the ``meta`` device (data-free tensors: forward and backward run, any read
of a value fails) or, under ``FakeTensorMode``, to ``cuda``. What runs there cannot copy from the host or read a
value back without :class:`~device_util.CopyCounter` seeing it.
"""
import pytest
import torch
import torch.distributed as dist
from basicsr.models import build_model
from torch._subclasses.fake_tensor import FakeTensorMode

from device_util import CopyCounter, assert_placed
from helpers import in_process, slkd_options, train_batch, train_steps
from slkd_basicsr.models.feature_taps import TapError

NETWORKS = ('net_g', 'net_scm', 'teacher_a', 'teacher_b')
COUNTERS = ('nonfinite_in_row', 'nonfinite_longest', 'nonfinite_total')


def _model(image_pairs, teachers, **train):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['train'].update(train)
    for key in ('nc_opt', 'et_opt'):
        opt['train'][key]['sample_channels'] = 2  # fewer than the taps' channels: the channel draw runs
    return build_model(opt)


def _move(model, device: torch.device) -> None:
    """Move an SLKDModel built on the CPU to ``device`` as if it had been built there.

    Generators cannot live on meta or fake devices, so the feature losses draw from the device's global one.
    """
    for name in NETWORKS:
        getattr(model, name).to(device)
    model.device = device
    for name in COUNTERS:
        setattr(model, name, getattr(model, name).to(device))
    for cri in (model.cri_nc, model.cri_et):
        cri.generator = None
    model.optimizers = []
    model.setup_optimizers()


def test_losses_and_backward_on_meta_reach_the_student_and_scm_only_without_copies(image_pairs, teachers):
    model = _model(image_pairs, teachers)
    meta = torch.device('meta')
    _move(model, meta)
    model.feed_data({key: torch.empty(2, 3, 32, 32, device=meta) for key in ('lq', 'gt')})
    model.compute_losses(1)  # warm: the extractors' constants reach the device once
    model._clear_taps()
    with CopyCounter() as counter:
        losses = dict(model.compute_losses(2))
        sum(losses.values()).backward()
    assert counter.events == []
    assert set(losses) == {'l_pix', 'l_kd', 'l_nc', 'l_et'}
    for name, value in losses.items():
        assert_placed(value, meta, torch.float32, name)
        assert value.dim() == 0, name
    for name in ('net_g', 'net_scm'):
        for pname, param in getattr(model, name).named_parameters():
            assert_placed(param.grad, meta, torch.float32, f'{name}.{pname}.grad')
    for name in ('teacher_a', 'teacher_b'):
        assert all(p.grad is None for p in getattr(model, name).parameters()), name


def test_forward_and_losses_stay_on_cuda(image_pairs, teachers):
    model = _model(image_pairs, teachers)
    batch = train_batch(model.opt)
    with FakeTensorMode(allow_non_fake_inputs=True):
        cuda = torch.device('cuda', 0)
        _move(model, cuda)
        model.feed_data(batch)
        losses = dict(model.compute_losses(1))
        for name, value in losses.items():
            assert_placed(value, cuda, torch.float32, name)
        assert_placed(model.output, cuda, torch.float32, 'student output')
    assert set(losses) == {'l_pix', 'l_kd', 'l_nc', 'l_et'}


def test_fused_optimizer_decides_the_step_on_the_device(image_pairs, teachers):
    """With ``fused: true`` the non-finite decision and the step make no read-back between logs."""
    model = _model(image_pairs, teachers, optim_g={'type': 'Adam', 'lr': 2e-3, 'fused': True})
    with FakeTensorMode(allow_non_fake_inputs=True):
        cuda = torch.device('cuda', 0)
        _move(model, cuda)
        for group in model.optimizer_g.param_groups:
            for param in group['params']:
                param.grad = torch.ones_like(param)
        l_total = torch.ones((), device=cuda)
        model._step_if_finite(l_total, 1)  # warm: the optimiser's state is made
        with CopyCounter() as counter:
            model._step_if_finite(l_total, 2)
        assert model.nonfinite_total.device == cuda
    assert counter.events == []


def _params(model):
    return {k: v.clone() for k, v in model.net_g.state_dict().items()}


def _poisoned(batch):
    poisoned = {key: value.clone() for key, value in batch.items()}
    poisoned['gt'][0, 0, 0, 0] = float('nan')
    return poisoned


def test_fused_optimizer_skips_non_finite_steps_and_stops_at_print_freq(image_pairs, teachers):
    from slkd_basicsr.models.slkd_model import NonFiniteLossError

    model = _model(image_pairs, teachers, optim_g={'type': 'Adam', 'lr': 2e-3, 'fused': True}, max_nonfinite_steps=2)
    model.opt['logger']['print_freq'] = 4
    batch = train_batch(model.opt)
    train_steps(model, batch, 1)
    before, steps = _params(model), model.optimizer_g.state[model.optimizer_g.param_groups[0]['params'][0]]['step']
    steps = steps.clone()
    model.feed_data(_poisoned(batch))
    model.optimize_parameters(2)
    model.optimize_parameters(3)  # two bad steps in a row: known on the device, not yet on the host
    after = _params(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(model.optimizer_g.state[model.optimizer_g.param_groups[0]['params'][0]]['step'], steps)
    model.feed_data(batch)
    with pytest.raises(NonFiniteLossError, match='2 steps in a row'):
        model.optimize_parameters(4)  # print_freq: the host reads the counters


def test_non_finite_decision_is_shared_by_all_ranks(image_pairs, teachers, monkeypatch):
    """Another rank's bad step (seen through the all-reduce) skips this rank's finite one."""
    model = _model(image_pairs, teachers)
    batch = train_batch(model.opt)
    reduced = []

    def all_reduce(tensor, op):
        reduced.append(op)
        tensor.fill_(1)

    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'all_reduce', all_reduce)
    before = _params(model)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert reduced == [dist.ReduceOp.MAX]
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    assert int(model.nonfinite_total) == 1


def test_losses_are_reduced_only_when_logged(image_pairs, teachers, monkeypatch):
    model = _model(image_pairs, teachers)
    calls = []
    reduce = model.reduce_loss_dict
    monkeypatch.setattr(model, 'reduce_loss_dict', lambda losses: calls.append(1) or reduce(losses))
    batch = train_batch(model.opt)
    for it in (1, 2, 3):
        model.feed_data(batch)
        model.optimize_parameters(it)
    assert calls == []
    log = model.get_current_log()
    assert calls == [1] and {'l_pix', 'l_kd', 'l_nc', 'l_et', 'l_total'} <= set(log)


def test_faded_out_distillation_runs_no_teacher(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['anneal_iters'] = 2
    model = build_model(opt)
    calls = []
    for teacher in (model.teacher_a, model.teacher_b):
        teacher.register_forward_pre_hook(lambda module, inputs: calls.append(module))
    logs = train_steps(model, train_batch(opt), 3)
    assert len(calls) == 2  # both teachers at iteration 1 only: the weight is 0 from iteration 2
    assert {'l_kd', 'l_nc', 'l_et'} <= set(logs[0]) and not {'l_kd', 'l_nc', 'l_et'} & set(logs[2])
    assert logs[2]['distill_weight'] == 0


def test_validation_leaves_no_student_features_behind(image_pairs, teachers):
    model = _model(image_pairs, teachers)
    model.feed_data(train_batch(model.opt))
    model.test()
    with pytest.raises(TapError, match='did not run'):
        model.student_taps.features()
