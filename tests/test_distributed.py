"""Two processes on the CPU through torchrun (gloo): one student, the data split between ranks, rank 0 alone writes."""
import re
import socket
from os import path as osp

import torch

from helpers import run_entry, slkd_options, write_options

WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'dist_worker.py')


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
        '--nproc_per_node=2', '--rdzv_backend=c10d', '--rdzv_endpoint=127.0.0.1:0', WORKER, '-opt', opt_path,
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
