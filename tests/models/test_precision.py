"""``train.amp``: bf16 trains on the CPU close to float32, fp16's scaler is saved and resumed, a bf16 run resumes."""
import pytest
import torch
from basicsr.models import build_model

from helpers import in_process, run_entry, slkd_options, train_batch, train_steps, write_options
from slkd_basicsr.checks.options import options_problems
from slkd_basicsr.models import precision
from slkd_basicsr.models.precision import amp_dtype

# Relative difference of each logged loss between a bf16 and a float32 run over the first 3 steps (same seed and
# batch). Measured: l_total 0.3%, l_pix 0.4%, l_kd 1.2%, l_nc 3.0%, l_et 4.2% (the feature terms compare
# statistics of bf16 features, upcast after the rounding; bf16 keeps 8 mantissa bits, 0.4% per rounding).
BF16_LOSS_RTOL = 0.06
AMP_PROBLEM = 'must be bf16, fp16, auto (bf16 where the device has it natively) or false (mixed precision off)'


def _slkd(image_pairs, teachers, amp):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['train']['amp'] = amp
    return build_model(opt), opt


def test_amp_option_values():
    assert amp_dtype(False) is None and amp_dtype(None) is None
    assert amp_dtype('bf16') == torch.bfloat16 and amp_dtype('fp16') == torch.float16
    with pytest.raises(ValueError, match="train.amp must be bf16, fp16, auto or false, got 'fp32'"):
        amp_dtype('fp32')


@pytest.mark.parametrize('native', [True, False])
def test_auto_is_bf16_only_where_the_device_has_it_natively(monkeypatch, native):
    monkeypatch.setattr(precision, 'native_bf16', lambda device: native)
    assert amp_dtype('auto', 'distill.teacher_amp', torch.device('cpu')) == (torch.bfloat16 if native else None)


def test_auto_on_a_device_without_bf16_is_full_precision():
    assert not precision.native_bf16(torch.device('meta'))
    assert amp_dtype('auto', device=torch.device('meta')) is None


def test_options_check_names_a_bad_amp(image_pairs, teachers):
    opt = slkd_options(image_pairs, teachers)
    opt['train']['amp'] = True
    opt['val']['amp'] = 'half'
    problems = options_problems(opt, is_train=True)
    assert f'train.amp: {AMP_PROBLEM}, got True.' in problems
    assert f"val.amp: {AMP_PROBLEM}, got 'half'." in problems


def test_bf16_trains_close_to_float32(image_pairs, teachers):
    logs, conv_dtypes = {}, set()
    for amp in (False, 'bf16'):
        model, opt = _slkd(image_pairs, teachers, amp)
        if amp:
            for net in (model.net_g, model.teacher_a, model.teacher_b):
                for module in net.modules():
                    if isinstance(module, torch.nn.Conv2d):
                        module.register_forward_hook(lambda module, inputs, output: conv_dtypes.add(output.dtype))
        logs[amp] = train_steps(model, train_batch(opt), 3)
        weights = list(model.net_g.parameters()) + list(model.net_scm.parameters())
        assert all(p.dtype == torch.float32 for p in weights), 'autocast keeps the weights in float32'
    assert conv_dtypes == {torch.bfloat16}, 'the student and both teachers run under autocast'
    for fp32, bf16 in zip(logs[False], logs['bf16']):
        for key in ('l_pix', 'l_kd', 'l_nc', 'l_et', 'l_total'):
            assert bf16[key] == pytest.approx(fp32[key], rel=BF16_LOSS_RTOL), key
    assert logs['bf16'][-1]['l_pix'] < logs['bf16'][0]['l_pix']


def test_fp16_scaler_state_is_saved_and_resumed(image_pairs, teachers, tmp_path):
    model, opt = _slkd(image_pairs, teachers, 'fp16')
    assert model.scaler.is_enabled()
    train_steps(model, train_batch(opt), 2)
    model.scaler.update(1234.0)  # a scale no fresh scaler has
    model.opt['path']['training_states'] = str(tmp_path)
    model.save_training_state(0, 2)
    state = torch.load(tmp_path / '2.state', weights_only=True)
    assert state['grad_scaler']['scale'] == 1234.0

    resumed, _ = _slkd(image_pairs, teachers, 'fp16')
    resumed.resume_training(state)
    assert resumed.scaler.get_scale() == 1234.0


def test_killed_bf16_run_resumes_where_an_uninterrupted_run_ends(image_pairs, teachers, tmp_path):
    """A bf16 run stopped after its state at iteration 3 and resumed to 6 ends with the uninterrupted run's weights."""
    opt = slkd_options(image_pairs, teachers)
    opt['train'].update(amp='bf16', total_iter=6)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    roots = {name: tmp_path / name for name in ('straight', 'stopped')}
    for root in roots.values():
        root.mkdir()
    straight = write_options(opt, str(roots['straight'] / 'slkd.yml'))
    assert run_entry('slkd_basicsr.tools.train', ['-opt', straight], str(roots['straight'])).returncode == 0

    stopped = str(roots['stopped'] / 'slkd.yml')
    opt['train']['total_iter'] = 3  # the run ends (as a kill would) right after its state at iteration 3
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, stopped)], str(roots['stopped']))
    assert proc.returncode == 0, proc.stderr[-3000:]
    opt['train']['total_iter'] = 6
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, stopped), '--auto_resume'],
                     str(roots['stopped']))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming training from epoch: 0, iter: 3' in proc.stdout + proc.stderr

    def weights(root):
        path = root / 'experiments' / 'tiny_slkd' / 'models' / 'net_g_latest.pth'
        return torch.load(path, weights_only=True)['params']

    expected, resumed = weights(roots['straight']), weights(roots['stopped'])
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)


def test_fp16_scaler_overflows_skip_steps_without_counting_as_non_finite(image_pairs, teachers):
    """Start-up with too large a scale: the scaler skips the overflowing steps and lowers its scale; they are not
    the non-finite steps ``max_nonfinite_steps`` counts."""
    model, opt = _slkd(image_pairs, teachers, 'fp16')
    model.scaler = torch.amp.GradScaler('cpu', init_scale=2.0**100)  # scaled gradients overflow at once
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    logs = train_steps(model, train_batch(opt), 2)
    assert model.scaler.get_scale() < 2.0**100
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    assert [log['nonfinite_steps'] for log in logs] == [0, 0]
