"""Two processes on the CPU through torchrun (gloo): one student, the data split between ranks, rank 0 alone writes,
each rank resumes its own random streams; num_gpu > 1 without the GPUs stops before anything is made."""
import re
import shutil
import socket

import torch

from helpers import DIST_WORKER, run_entry, slkd_options, write_options


def _loopback_gloo():
    """Gloo binds to the address the host name resolves to; keep it on the loopback interface where it is 'lo'."""
    return {'GLOO_SOCKET_IFNAME': 'lo'} if 'lo' in {name for _, name in socket.if_nameindex()} else {}


def test_two_process_slkd_run(image_pairs, teachers, tmp_path):
    opt = slkd_options(image_pairs, teachers)
    opt['train']['total_iter'] = 4
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    opt['val']['val_freq'] = 2
    opt_path = write_options(opt, str(tmp_path / 'slkd.yml'))
    # rendezvous port 0 on the loopback address: the OS picks a free port, nothing listens beyond this machine
    proc = run_entry('torch.distributed.run', [
        '--nproc_per_node=2', '--rdzv_backend=c10d', '--rdzv_endpoint=127.0.0.1:0', DIST_WORKER, '-opt', opt_path,
        '--launcher', 'pytorch'
    ], str(tmp_path), env=_loopback_gloo())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dumps = [torch.load(tmp_path / f'dump_rank{rank}.pth', weights_only=True) for rank in (0, 1)]
    assert [dump['backend'] for dump in dumps] == ['gloo', 'gloo']

    # one student: DDP keeps both ranks' weights identical, and rank 0 saved exactly those
    exp = tmp_path / 'rank0' / 'experiments' / 'tiny_slkd'
    saved = {it: torch.load(exp / 'models' / f'net_g_{it}.pth', weights_only=True)['params'] for it in (2, 'latest')}
    for name in ('net_g', 'net_scm'):
        assert all(torch.equal(dumps[0][name][k], v) for k, v in dumps[1][name].items()), name
    assert all(torch.equal(dumps[0]['net_g'][k], v) for k, v in saved['latest'].items())
    assert not all(torch.equal(saved[2][k], v) for k, v in saved['latest'].items()), 'no training after iter 2'

    # the sampler splits every epoch between the ranks (4 of the 8 images each), so an epoch is 2 iterations
    drawn = [dict(dump['drawn']) for dump in dumps]
    assert drawn[0].keys() == drawn[1].keys() and {0, 1} <= drawn[0].keys()
    for epoch in drawn[0]:
        first, second = set(drawn[0][epoch]), set(drawn[1][epoch])
        assert len(first) == len(second) == 4 and first.isdisjoint(second) and first | second == set(range(8))

    # rank 0 alone logs, saves and validates; rank 1 writes nothing under its own root
    assert list((tmp_path / 'rank1').iterdir()) == []
    assert [dump['validated'] for dump in dumps] == [['generated_val'], []]
    assert sorted(p.name for p in (exp / 'models').iterdir()) == [
        'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth', 'net_scm_2.pth', 'net_scm_4.pth', 'net_scm_latest.pth'
    ]
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['2.state', '4.state']
    logs = list(exp.glob('train_tiny_slkd_*.log'))
    assert len(logs) == 1
    log = logs[0].read_text()
    assert 'World size (gpu number): 2' in log and re.search(r'epoch:\s*1, iter:\s*3,', log)
    assert log.count('Validation generated_val') == 3  # iterations 2 and 4, and the final one
    assert log.count('Teacher A on generated_val') == 1


def _torchrun_train(opt_path, cwd, *args):
    """``slkd_basicsr.tools.train`` in two processes on the CPU, all ranks in ``cwd`` (one node, one disk)."""
    return run_entry('torch.distributed.run', [
        '--nproc_per_node=2', '--rdzv_backend=c10d', '--rdzv_endpoint=127.0.0.1:0', '-m', 'slkd_basicsr.tools.train',
        '-opt', opt_path, '--launcher', 'pytorch', *args
    ], str(cwd), env=_loopback_gloo())


def test_two_process_resume_restores_each_ranks_random_streams(image_pairs, teachers, tmp_path):
    """A 2-process run resumed in the middle of an epoch ends bit-identical to the uninterrupted one: each rank
    restores its own random states (its augmentations differ from the other rank's)."""
    opt = slkd_options(image_pairs, teachers)
    opt['train']['total_iter'] = 5  # 2 iterations per epoch: the state at iteration 3 is inside epoch 1
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    opt['dist_params'] = {'timeout_minutes': 5}
    opt_path = write_options(opt, str(tmp_path / 'slkd.yml'))
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    straight.mkdir()
    proc = _torchrun_train(opt_path, straight)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    exp = straight / 'experiments' / 'tiny_slkd'
    rng = torch.load(exp / 'training_states' / '3.state', weights_only=True)['rng']
    assert len(rng) == 2 and not torch.equal(rng[0]['torch'], rng[1]['torch'])
    # the run as it stood when its state at iteration 3 was written: resume it to the end
    shutil.copytree(exp, resumed / 'experiments' / 'tiny_slkd')
    for name in ('net_g', 'net_scm'):
        (resumed / 'experiments' / 'tiny_slkd' / 'models' / f'{name}_latest.pth').unlink()
    proc = _torchrun_train(opt_path, resumed, '--auto_resume')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Resuming inside epoch 1: skipping its first 1 batches.' in proc.stdout + proc.stderr

    for name in ('net_g', 'net_scm'):
        expected, got = (torch.load(root / 'experiments' / 'tiny_slkd' / 'models' / f'{name}_latest.pth',
                                    weights_only=True)['params'] for root in (straight, resumed))
        assert all(torch.equal(expected[k], got[k]) for k in expected), name


def test_num_gpu_2_without_the_gpus_stops_with_one_line(image_pairs, teachers, tmp_path):
    opt = slkd_options(image_pairs, teachers)
    opt['num_gpu'] = 2
    opt_path = write_options(opt, str(tmp_path / 'slkd.yml'))
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', opt_path], str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f'slkd-train: {opt_path}: num_gpu is 2 but this machine has no CUDA '
        'device: set num_gpu: 0 to run on the CPU.']
    assert not (tmp_path / 'experiments').exists()
