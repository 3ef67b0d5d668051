"""gloo on CPU-only machines, DDP without device_ids, the process group's timeout from the options file, and the
num_gpu rules (the CPU for num_gpu: 1 without CUDA; num_gpu > 1 needs the devices and, to train, a launcher)."""
import argparse
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


# ---- num_gpu -----------------------------------------------------------------------------------------------------

@pytest.fixture
def cuda_devices(monkeypatch):
    """Pretend this machine has ``n`` CUDA devices: ``cuda_devices(n)``."""

    def pretend(count):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: count > 0)
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: count)

    return pretend


def _settled(num_gpu, is_train=True, dist=False):
    """The options a parse_options that read ``opt.yml`` returns, once num_gpu is settled."""
    parse_options = distributed._num_gpu_settled(
        lambda root_path, is_train=True: ({'num_gpu': num_gpu, 'dist': dist}, argparse.Namespace(opt='opt.yml')))
    return parse_options('.', is_train)[0]


def test_num_gpu_1_without_cuda_runs_on_the_cpu(cuda_devices, capsys):
    cuda_devices(0)
    assert _settled(1) == {'num_gpu': 0, 'dist': False}
    assert capsys.readouterr().out == 'num_gpu is 1 but CUDA is not available: running on the CPU.\n'


NO_CUDA = 'opt.yml: num_gpu is 2 but this machine has no CUDA device: set num_gpu: 0 to run on the CPU.'


@pytest.mark.parametrize('num_gpu, devices, is_train, dist, text', [
    (2, 0, True, False, NO_CUDA),
    (2, 0, False, False, NO_CUDA),
    (2, 0, True, True, NO_CUDA),
    (2, 1, True, False, 'opt.yml: num_gpu is 2 but this machine has only 1 CUDA device: set num_gpu to at most 1.'),
    (4, 2, False, False, 'opt.yml: num_gpu is 4 but this machine has only 2 CUDA devices: set num_gpu to at most 2.'),
    (2, 2, True, False, 'opt.yml: num_gpu is 2 without a launcher: BasicSR would wrap the networks in DataParallel, '
     "whose replicas break SLKD's feature taps (their forward hooks fire in every replica). Start one process per "
     'GPU instead: torchrun --nproc_per_node=2 -m slkd_basicsr.tools.train -opt opt.yml --launcher pytorch (or set '
     'num_gpu: 1).'),
])
def test_num_gpu_that_cannot_run_is_an_options_error(cuda_devices, num_gpu, devices, is_train, dist, text):
    cuda_devices(devices)
    with pytest.raises(OptionsError) as err:
        _settled(num_gpu, is_train, dist)
    assert str(err.value) == text


@pytest.mark.parametrize('num_gpu, devices, is_train, dist', [
    (2, 2, False, False),  # slkd-test: DataParallel, no feature taps
    (2, 2, True, True),  # one process per GPU
    (1, 2, True, False),
    (0, 0, True, False),
])
def test_num_gpu_that_can_run_is_kept(cuda_devices, num_gpu, devices, is_train, dist):
    cuda_devices(devices)
    assert _settled(num_gpu, is_train, dist) == {'num_gpu': num_gpu, 'dist': dist}


def test_num_gpu_auto_counting_two_devices_without_a_launcher_is_refused(image_pairs, tmp_path, monkeypatch,
                                                                         cuda_devices):
    """BasicSR's parse_options makes auto the CUDA device count; the check sees the count."""
    cuda_devices(2)
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', lambda seed: None)  # parse_options seeds the (absent) GPUs
    path = _options_file(image_pairs, tmp_path, num_gpu='auto')
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', path])
    parse_options = distributed._num_gpu_settled(basicsr_options.parse_options)
    with pytest.raises(OptionsError, match=r'num_gpu is 2 without a launcher: .* torchrun --nproc_per_node=2 '):
        parse_options(str(tmp_path), is_train=True)
    assert parse_options(str(tmp_path), is_train=False)[0]['num_gpu'] == 2  # slkd-test may use DataParallel
    cuda_devices(1)
    assert parse_options(str(tmp_path), is_train=True)[0]['num_gpu'] == 1
