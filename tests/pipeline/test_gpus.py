"""The num_gpu rules: the CPU for num_gpu: 1 without CUDA; num_gpu > 1 needs the devices and, to train, a
launcher."""
import sys

import pytest
import torch
from basicsr.utils import options as basicsr_options

from helpers import sr_options, write_options
from slkd_basicsr.checks.options import OptionsError
from slkd_basicsr.pipeline.gpus import settle_num_gpu


def _options_file(image_pairs, tmp_path, **top):
    opt = sr_options(image_pairs)
    opt.update(top)
    return write_options(opt, str(tmp_path / 'opt.yml'))


@pytest.fixture
def cuda_devices(monkeypatch):
    """Pretend this machine has ``n`` CUDA devices: ``cuda_devices(n)``."""

    def pretend(count):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: count > 0)
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: count)

    return pretend


def _settled(num_gpu, is_train=True, dist=False):
    """The options read from ``opt.yml``, once num_gpu is settled."""
    opt = {'num_gpu': num_gpu, 'dist': dist}
    settle_num_gpu(opt, is_train, 'opt.yml')
    return opt


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

    def parse_options(root_path, is_train):  # BasicSR's, then the first step of the plugin's (pipeline.parse)
        opt, args = basicsr_options.parse_options(root_path, is_train)
        settle_num_gpu(opt, is_train, args.opt)
        return opt, args

    with pytest.raises(OptionsError, match=r'num_gpu is 2 without a launcher: .* torchrun --nproc_per_node=2 '):
        parse_options(str(tmp_path), is_train=True)
    assert parse_options(str(tmp_path), is_train=False)[0]['num_gpu'] == 2  # slkd-test may use DataParallel
    cuda_devices(1)
    assert parse_options(str(tmp_path), is_train=True)[0]['num_gpu'] == 1
