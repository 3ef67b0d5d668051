"""gloo on CPU-only machines, DDP without device_ids, the process group's timeout from the options file."""
import datetime
import os
import subprocess
import sys

import pytest
import torch
from basicsr.models import build_model
from basicsr.utils import options as basicsr_options

from helpers import sr_options, write_options
from slkd_basicsr.checks.options import OptionsError
from slkd_basicsr.compat import distributed


def test_gloo_process_group_and_cpu_ddp(image_pairs, monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29533')
    distributed.init_dist('pytorch')
    try:
        assert torch.distributed.get_backend() == 'gloo'
        opt = sr_options(image_pairs)
        opt.update(is_train=False, dist=True, rank=0, world_size=1)
        model = build_model(opt)
        assert isinstance(model.net_g, torch.nn.parallel.DistributedDataParallel)
    finally:
        torch.distributed.destroy_process_group()


# ---- the timeout -------------------------------------------------------------------------------------------------

@pytest.fixture
def init_calls(monkeypatch):
    """The keyword arguments of every ``init_process_group`` call (none is made), with torchrun's variables set."""
    calls = []
    monkeypatch.setattr(torch.distributed, 'init_process_group', lambda **kwargs: calls.append(kwargs))
    for key, value in {'RANK': '0', 'LOCAL_RANK': '0', 'WORLD_SIZE': '1', 'MASTER_ADDR': '127.0.0.1',
                       'MASTER_PORT': '29534'}.items():
        monkeypatch.setenv(key, value)
    return calls


def test_the_timeout_reaches_the_process_group(init_calls):
    distributed.init_dist('pytorch', timeout_minutes=2.5)
    distributed.init_dist('pytorch')
    assert init_calls == [{'backend': 'gloo', 'timeout': datetime.timedelta(minutes=2.5)}, {'backend': 'gloo'}]


def _options_file(image_pairs, tmp_path, **top):
    opt = sr_options(image_pairs)
    opt.update(top)
    return write_options(opt, str(tmp_path / 'opt.yml'))


def test_parse_options_with_torchrun_takes_the_timeout_from_the_options_file(image_pairs, tmp_path, init_calls,
                                                                             monkeypatch):
    """BasicSR's parse_options calls init_dist without dist_params for --launcher pytorch; backend and port stay
    unused there, as in BasicSR."""
    path = _options_file(image_pairs, tmp_path, dist_params={'backend': 'nccl', 'port': 29500, 'timeout_minutes': 90})
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', path, '--launcher', 'pytorch'])
    opt, _ = basicsr_options.parse_options(str(tmp_path), is_train=True)
    assert opt['dist'] is True
    assert init_calls == [{'backend': 'gloo', 'timeout': datetime.timedelta(minutes=90)}]


def test_a_bad_timeout_stops_before_the_process_group(image_pairs, tmp_path, init_calls, monkeypatch):
    path = _options_file(image_pairs, tmp_path, dist_params={'timeout_minutes': -1})
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', path, '--launcher', 'pytorch'])
    with pytest.raises(OptionsError, match=r'opt.yml: dist_params.timeout_minutes: -1 is out of range; it must be > 0'):
        basicsr_options.parse_options(str(tmp_path), is_train=True)
    assert init_calls == []


def test_slurm_gets_the_timeout_backend_and_port(image_pairs, tmp_path, init_calls, monkeypatch):
    path = _options_file(image_pairs, tmp_path, dist_params={'backend': 'gloo', 'port': 29601, 'timeout_minutes': 5})
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', path, '--launcher', 'slurm'])
    for key, value in {'SLURM_PROCID': '0', 'SLURM_NTASKS': '1', 'SLURM_LOCALID': '0', 'SLURM_NODELIST': 'node[1-2]'
                       }.items():
        monkeypatch.setenv(key, value)
    scontrol = []

    def fake_run(cmd, **kwargs):
        scontrol.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout='node1\nnode2\n')

    monkeypatch.setattr(distributed.subprocess, 'run', fake_run)
    basicsr_options.parse_options(str(tmp_path), is_train=True)
    assert scontrol == [['scontrol', 'show', 'hostnames', 'node[1-2]']]
    assert init_calls == [{'backend': 'gloo', 'timeout': datetime.timedelta(minutes=5)}]
    assert {key: os.environ[key] for key in ('MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK')} == {
        'MASTER_ADDR': 'node1', 'MASTER_PORT': '29601', 'WORLD_SIZE': '1', 'RANK': '0', 'LOCAL_RANK': '0'}
