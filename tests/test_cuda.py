"""What only a real GPU can show: training, resume, mixed precision, copies and synchronisations on CUDA, and two
ranks over NCCL. Skipped without CUDA; ``bench/gpu_check.py`` runs them (with the CPU-side GPU-path tests) on the
first GPU machine and records the outcome."""
import pytest
import torch
from basicsr.models import build_model

from device_util import CopyCounter, assert_placed
from helpers import DIST_WORKER, in_process, run_entry, slkd_options, train_batch, train_steps, write_options

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

ON_GPU = {'CUDA_VISIBLE_DEVICES': '0'}
# cuDNN and atomics in backward kernels need not be bitwise reproducible: a resumed run is compared within this
RESUME_ATOL = 1e-5


def _gpu_options(image_pairs, teachers, **train):
    opt = slkd_options(image_pairs, teachers)
    opt['num_gpu'] = 1
    opt['train'].update(train)
    return opt


def _model(image_pairs, teachers, **train):
    model = build_model(in_process(_gpu_options(image_pairs, teachers, **train)))
    assert model.device.type == 'cuda'
    return model


def _warm_step(model) -> CopyCounter:
    """The transfers of the third step on a batch already on the GPU, with nothing logged in between."""
    model.opt['logger']['print_freq'] = 100
    batch = {key: value.cuda() for key, value in train_batch(model.opt).items()}
    train_steps(model, batch, 2)
    model.feed_data(batch)
    with CopyCounter() as counter:
        model.optimize_parameters(3)
    return counter


def test_step_on_cuda_makes_no_copy_or_sync_once_warm(image_pairs, teachers):
    model = _model(image_pairs, teachers, optim_g={'type': 'Adam', 'lr': 2e-3, 'fused': True})
    assert _warm_step(model).events == []
    for name in ('net_g', 'net_scm'):
        for pname, param in getattr(model, name).named_parameters():
            assert_placed(param.grad, param.device, torch.float32, f'{name}.{pname}.grad')


def test_a_plain_optimizer_reads_back_only_its_skip_decision(image_pairs, teachers):
    counter = _warm_step(_model(image_pairs, teachers))  # Adam without fused: it cannot skip on the device
    assert counter.h2d == 0 and counter.d2h == 1, counter.events


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_mixed_precision_trains_on_cuda(image_pairs, teachers, amp):
    model = _model(image_pairs, teachers, amp=amp)
    assert model.scaler.is_enabled() == (amp == 'fp16')
    logs = train_steps(model, train_batch(model.opt), 4)
    assert all(log['nonfinite_steps'] == 0 for log in logs)
    assert logs[-1]['l_pix'] < logs[0]['l_pix']


def _weights(root, name='net_g'):
    path = root / 'experiments' / 'tiny_slkd' / 'models' / f'{name}_latest.pth'
    return torch.load(path, weights_only=True)['params']


@pytest.mark.parametrize('amp', [False, 'fp16'])
def test_auto_resume_on_cuda_ends_where_an_uninterrupted_run_ends(image_pairs, teachers, tmp_path, amp):
    opt = _gpu_options(image_pairs, teachers, amp=amp, total_iter=6)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 3
    roots = {name: tmp_path / name for name in ('straight', 'stopped')}
    for root in roots.values():
        root.mkdir()
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, str(roots['straight'] / 'o.yml'))],
                     str(roots['straight']), env=ON_GPU)
    assert proc.returncode == 0, proc.stderr[-3000:]

    stopped = str(roots['stopped'] / 'o.yml')
    opt['train']['total_iter'] = 3
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, stopped)], str(roots['stopped']),
                     env=ON_GPU)
    assert proc.returncode == 0, proc.stderr[-3000:]
    opt['train']['total_iter'] = 6
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, stopped), '--auto_resume'],
                     str(roots['stopped']), env=ON_GPU)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming training from epoch: 0, iter: 3' in proc.stdout + proc.stderr
    for name in ('net_g', 'net_scm'):
        expected, resumed = _weights(roots['straight'], name), _weights(roots['stopped'], name)
        for key in expected:
            assert torch.allclose(expected[key], resumed[key], rtol=0, atol=RESUME_ATOL), f'{name}.{key}'


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs two GPUs')
def test_two_ranks_over_nccl(image_pairs, teachers, tmp_path):

    opt = _gpu_options(image_pairs, teachers, total_iter=4)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt['val']['val_freq'] = 2
    opt['dist_params'] = {'timeout_minutes': 5}
    opt_path = write_options(opt, str(tmp_path / 'slkd.yml'))
    proc = run_entry('torch.distributed.run', [
        '--nproc_per_node=2', '--rdzv_backend=c10d', '--rdzv_endpoint=127.0.0.1:0', DIST_WORKER, '-opt', opt_path,
        '--launcher', 'pytorch'
    ], str(tmp_path), env={'CUDA_VISIBLE_DEVICES': '0,1'})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dumps = [torch.load(tmp_path / f'dump_rank{rank}.pth', weights_only=True) for rank in (0, 1)]
    assert [dump['backend'] for dump in dumps] == ['nccl', 'nccl']
    for name in ('net_g', 'net_scm'):
        assert all(torch.equal(dumps[0][name][k], v) for k, v in dumps[1][name].items()), name
