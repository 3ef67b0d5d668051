"""SLKDModel through BasicSR's builders and pipeline: losses, teachers, gradients, ablations, resume, output."""
import copy
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model
from basicsr.utils import check_resume, set_random_seed
from basicsr.utils.registry import ARCH_REGISTRY

from helpers import in_process, run_entry, slkd_options, train_batch, train_steps, write_options
from slkd_basicsr.models.feature_taps import TapError
from slkd_basicsr.models.scm import ScaleConversionModule

LOSS_KEYS = {'kd': 'kd_opt', 'nc': 'nc_opt', 'et': 'et_opt'}


def _state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_slkd_trains_with_frozen_teachers(image_pairs, teachers):
    set_random_seed(0)  # initial weights and crops independent of the tests run before (the loss drop varies)
    opt = in_process(slkd_options(image_pairs, teachers))
    model = build_model(opt)
    assert type(model).__name__ == 'SLKDModel'
    teacher_states = {name: _state(getattr(model, name)) for name in ('teacher_a', 'teacher_b')}
    batch = train_batch(opt)

    model.feed_data(batch)
    model.optimize_parameters(1)
    # the step zeroes nothing afterwards: the gradients of that step are still there to inspect
    for name, net in (('student', model.net_g), ('scm', model.net_scm)):
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None for g in grads), name
        assert all(g.abs().sum() > 0 for g in grads), name
    optimised = {id(p) for group in model.optimizer_g.param_groups for p in group['params']}
    for name in ('teacher_a', 'teacher_b'):
        teacher = getattr(model, name)
        assert not teacher.training
        for p in teacher.parameters():
            assert not p.requires_grad and p.grad is None and id(p) not in optimised

    logs = train_steps(model, batch, 30)
    assert {'l_pix', 'l_kd', 'l_nc', 'l_et', 'l_total'} <= set(logs[0])
    assert all(torch.isfinite(torch.tensor(log['l_total'])) for log in logs)
    first, last = sum(log['l_total'] for log in logs[:3]) / 3, sum(log['l_total'] for log in logs[-3:]) / 3
    assert last < 0.8 * first
    for name, before in teacher_states.items():
        after = getattr(model, name).state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), name


@pytest.mark.parametrize('removed', [('kd', ), ('nc', ), ('et', ), ('kd', 'nc'), ('nc', 'et'), ('kd', 'et')])
def test_ablations_train(image_pairs, teachers, removed):
    opt = in_process(slkd_options(image_pairs, teachers))
    for term in removed:
        del opt['train'][LOSS_KEYS[term]]
    model = build_model(opt)
    logs = train_steps(model, train_batch(opt), 2)
    assert all(f'l_{term}' not in logs[-1] for term in removed)
    assert all(f'l_{term}' in logs[-1] for term in set(LOSS_KEYS) - set(removed))
    assert (model.teacher_b is None) == ('et' in removed)


def test_without_distillation_terms_equals_srmodel(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    for key in LOSS_KEYS.values():
        del opt['train'][key]
    plain = copy.deepcopy(opt)
    plain['model_type'] = 'SRModel'
    batch = train_batch(opt)
    weights = []
    for options in (opt, plain):
        torch.manual_seed(3)
        model = build_model(options)
        train_steps(model, batch, 5)
        weights.append(_state(model.net_g))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_resume_restores_student_scm_optimizer_scheduler(image_pairs, teachers, tmp_path):
    opt = in_process(slkd_options(image_pairs, teachers))
    paths = {key: str(tmp_path / key) for key in ('models', 'training_states')}
    for folder in paths.values():
        os.makedirs(folder)
    opt['path'].update(paths)
    model = build_model(opt)
    train_steps(model, train_batch(opt), 3)
    model.save(0, 3)
    assert sorted(os.listdir(paths['models'])) == ['net_g_3.pth', 'net_scm_3.pth']

    resumed_opt = copy.deepcopy(opt)
    resumed_opt['path']['resume_state'] = os.path.join(paths['training_states'], '3.state')
    resumed_opt['path']['ignore_resume_networks'] = ['network_teacher_a', 'network_teacher_b']
    check_resume(resumed_opt, 3)
    resumed = build_model(resumed_opt)
    resumed.resume_training(torch.load(resumed_opt['path']['resume_state'], weights_only=True))

    for name in ('net_g', 'net_scm'):
        before, after = getattr(model, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), name
    saved_opt, resumed_optim = model.optimizer_g.state_dict(), resumed.optimizer_g.state_dict()
    for key, slot in saved_opt['state'].items():
        assert all(torch.equal(slot[k], resumed_optim['state'][key][k]) for k in ('exp_avg', 'exp_avg_sq'))
    assert model.schedulers[0].state_dict() == resumed.schedulers[0].state_dict()


def test_pipeline_logs_terms_and_writes_deployable_student(image_pairs, teachers, tmp_path):
    opt = slkd_options(image_pairs, teachers)
    opt['train']['total_iter'] = 20
    opt['logger'].update(print_freq=10, save_checkpoint_freq=10)
    opt['val']['val_freq'] = 20
    opt['distill']['log_complexity'] = True
    opt_path = write_options(opt, str(tmp_path / 'slkd.yml'))
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', opt_path], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    for text in ('l_pix:', 'l_kd:', 'l_nc:', 'l_et:', 'l_total:', 'Teacher A on generated_val', 'Complexity at 32x32',
                 'student'):
        assert text in log, text
    models = tmp_path / 'experiments' / 'tiny_slkd' / 'models'
    assert {'net_g_20.pth', 'net_scm_20.pth', 'net_g_latest.pth'} <= set(os.listdir(models))

    checkpoint = torch.load(models / 'net_g_latest.pth', weights_only=True)
    student = build_network(opt['network_g'])
    assert set(checkpoint) == {'params'}
    assert set(checkpoint['params']) == set(student.state_dict())
    student.load_state_dict(checkpoint['params'], strict=True)
    assert student(torch.rand(1, 3, 37, 53)).shape == (1, 3, 37, 53)


def test_unknown_tap_lists_close_names(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['distill']['encoder_taps'] = ['encoder_level1', ['encoder_levle2', 'encoder_level2']]
    with pytest.raises(TapError, match='encoder_levle2.*Closest existing modules: encoder_level2'):
        build_model(opt)


def test_default_taps_come_from_the_archs(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    assert 'encoder_taps' not in opt['distill'] and 'decoder_taps' not in opt['distill']
    model = build_model(opt)
    defaults = ARCH_REGISTRY.get('Restormer').default_taps
    assert model.student_taps.names == defaults['encoder'] + defaults['decoder']
    assert model.teacher_a_taps.names == defaults['encoder']
    assert model.teacher_b_taps.names == defaults['decoder']
    assert isinstance(model.get_bare_model(model.net_scm), ScaleConversionModule)
    assert 'ScaleConversionModule' not in ARCH_REGISTRY  # built by the model only, never from the options


@pytest.mark.parametrize('loss, kind', [('nc_opt', 'encoder'), ('et_opt', 'decoder')])
def test_arch_without_default_taps_asks_for_them(image_pairs, teachers, loss, kind):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['network_g'] = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 1, 'num_feat': 8,
                        'num_block': 1, 'num_grow_ch': 4}
    del opt['train'][{'nc_opt': 'et_opt', 'et_opt': 'nc_opt'}[loss]]
    with pytest.raises(TapError, match=f'student RRDBNet declares no default {kind} taps.*distill.{kind}_taps'):
        build_model(opt)


def test_teacher_without_checkpoint_is_a_clear_error(image_pairs, teachers):
    opt = in_process(slkd_options(image_pairs, teachers))
    del opt['path']['pretrain_network_teacher_b']
    with pytest.raises(ValueError, match="path.pretrain_network_teacher_b: not set; train.et_opt needs teacher B's"):
        build_model(opt)


def test_teacher_checkpoint_with_non_finite_values_is_refused(image_pairs, teachers, tmp_path):
    from slkd_basicsr.errors import CheckpointError

    params = torch.load(teachers['a'], weights_only=True)['params']
    params['encoder_level1.0.attn.qkv.weight'].view(-1)[:3] = float('nan')
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['path']['pretrain_network_teacher_a'] = str(tmp_path / 'diverged.pth')
    torch.save({'params': params}, opt['path']['pretrain_network_teacher_a'])
    with pytest.raises(CheckpointError, match=r"teacher A \(path.pretrain_network_teacher_a\): Restormer checkpoint "
                       r"'.*diverged.pth' has non-finite values in 'encoder_level1.0.attn.qkv.weight' \(3 NaN, 0 inf"):
        build_model(opt)


def test_non_finite_steps_are_skipped_then_stop_the_run(image_pairs, teachers):
    from slkd_basicsr.models.slkd_model import NonFiniteLossError

    opt = in_process(slkd_options(image_pairs, teachers))
    opt['train']['max_nonfinite_steps'] = 2
    model = build_model(opt)
    batch = train_batch(opt)
    before = _state(model.net_g)
    poisoned = {'lq': batch['lq'].clone(), 'gt': batch['gt'].clone()}
    poisoned['gt'][0, 0, 0, 0] = float('nan')
    model.feed_data(poisoned)
    model.optimize_parameters(1)
    assert model.get_current_log()['nonfinite_steps'] == 1
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    model.feed_data(batch)
    model.optimize_parameters(2)  # a good step resets the run of bad ones
    assert model.nonfinite_in_row == 0
    for it in (3, 4):
        model.feed_data(poisoned)
        if it == 4:
            with pytest.raises(NonFiniteLossError, match='max_nonfinite_steps'):
                model.optimize_parameters(it)
        else:
            model.optimize_parameters(it)


def test_student_and_scm_in_ddp_teachers_not(image_pairs, teachers, monkeypatch):
    from slkd_basicsr.compat.distributed import init_dist

    for key, value in (('RANK', '0'), ('LOCAL_RANK', '0'), ('WORLD_SIZE', '1'), ('MASTER_ADDR', '127.0.0.1'),
                       ('MASTER_PORT', '29544')):
        monkeypatch.setenv(key, value)
    init_dist('pytorch')
    try:
        opt = in_process(slkd_options(image_pairs, teachers))
        opt['dist'] = True
        model = build_model(opt)
        ddp = torch.nn.parallel.DistributedDataParallel
        assert isinstance(model.net_g, ddp) and isinstance(model.net_scm, ddp)
        assert not isinstance(model.teacher_a, ddp) and not isinstance(model.teacher_b, ddp)
        logs = train_steps(model, train_batch(opt), 2)
        assert {'l_nc', 'l_et'} <= set(logs[-1]) and logs[-1]['nonfinite_steps'] == 0
    finally:
        torch.distributed.destroy_process_group()


def test_the_model_imports_nothing_from_compat():
    """BasicSR's fixes are the entry points' business: resume asks the model what it needs through methods
    (``lr_option_keys``, ``extra_training_state``), so no import of the model's module names ``slkd_basicsr.compat``
    (relative imports resolved, those inside functions included)."""
    import ast

    from slkd_basicsr.models import slkd_model

    package = slkd_model.__package__.split('.')
    with open(slkd_model.__file__, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package[:len(package) + 1 - node.level] if node.level else []
            base = '.'.join(parts + ([node.module] if node.module else []))
            imported += [base] + [f'{base}.{alias.name}' for alias in node.names]
    assert 'slkd_basicsr.errors.CheckpointError' in imported  # the scan sees the model's imports
    assert [name for name in imported if name.split('.')[:2] == ['slkd_basicsr', 'compat']] == []
