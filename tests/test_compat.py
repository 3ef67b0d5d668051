"""The compatibility layer: BasicSR 1.4.2 on today's torch/torchvision, on a CPU-only machine."""
import collections
import os
import pickle

import pytest
import torch

from basicsr.models import build_model
from basicsr.models.lr_scheduler import MultiStepRestartLR
from slkd_basicsr import compat
from helpers import sr_options


class _Payload:
    """Pickles into a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_basicsr_degradations_import():
    from basicsr.data import degradations
    assert callable(degradations.random_add_gaussian_noise_pt)


def test_resume_state_with_counter_loads_weights_only(tmp_path):
    net = torch.nn.Conv2d(3, 3, 1)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    scheduler = MultiStepRestartLR(optimizer, milestones=[10, 20], gamma=0.5)
    net(torch.rand(1, 3, 4, 4)).sum().backward()
    optimizer.step()
    state = {'epoch': 1, 'iter': 5, 'optimizers': [optimizer.state_dict()], 'schedulers': [scheduler.state_dict()]}
    assert isinstance(state['schedulers'][0]['milestones'], collections.Counter)
    path = str(tmp_path / '5.state')
    compat.atomic_torch_save(state, path)
    loaded = compat.safe_load(path)
    assert loaded['schedulers'][0]['milestones'] == collections.Counter({10: 1, 20: 1})
    assert torch.equal(loaded['optimizers'][0]['state'][0]['exp_avg'], optimizer.state_dict()['state'][0]['exp_avg'])


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        torch.save({'params': {'w': torch.zeros(1)}, 'x': _Payload(str(marker))}, f, pickle_module=pickle)
    with pytest.raises(compat.CheckpointError, match='weights_only=True'):
        compat.safe_load(str(path), what='teacher A checkpoint')
    assert not marker.exists()


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(compat.CheckpointError, match='nowhere.pth'):
        compat.safe_load(str(tmp_path / 'nowhere.pth'))


def test_atomic_save_leaves_no_temporary_files(tmp_path):
    compat.atomic_torch_save({'a': torch.ones(2)}, str(tmp_path / 'x.pth'))
    assert os.listdir(tmp_path) == ['x.pth']


def test_latest_training_state_ignores_partial_files(tmp_path):
    for name in ('10.state', '20.state', '.30.state.abc.tmp', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert compat.latest_training_state(str(tmp_path)) == str(tmp_path / '20.state')
    assert compat.latest_training_state(str(tmp_path / 'missing')) is None


def test_load_network_names_missing_param_key(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    opt.update(is_train=False, dist=False, rank=0)
    model = build_model(opt)
    path = str(tmp_path / 'net.pth')
    torch.save({'weights': model.net_g.state_dict()}, path)
    with pytest.raises(compat.CheckpointError, match="no key 'params'"):
        model.load_network(model.net_g, path, True, 'params')
    torch.save({'params': {'module.' + k: v for k, v in model.net_g.state_dict().items()}}, path)
    model.load_network(model.net_g, path, True, 'params')


def test_gloo_process_group_and_cpu_ddp(image_pairs, monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29533')
    compat.init_dist('pytorch')
    try:
        assert torch.distributed.get_backend() == 'gloo'
        opt = sr_options(image_pairs)
        opt.update(is_train=False, dist=True, rank=0, world_size=1)
        model = build_model(opt)
        assert isinstance(model.net_g, torch.nn.parallel.DistributedDataParallel)
    finally:
        torch.distributed.destroy_process_group()


def test_strict_load_mismatch_names_file_and_keys(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    opt.update(is_train=False, dist=False, rank=0)
    model = build_model(opt)
    state = model.net_g.state_dict()
    state.pop('output.weight')
    state['patch_embed.proj.weight'] = torch.zeros(1, 3, 3, 3)
    path = str(tmp_path / 'other.pth')
    torch.save({'params': state}, path)
    with pytest.raises(compat.CheckpointError, match=r"other.pth.*missing in the file \(1\): output.weight.*"
                       r"shape mismatch \(1\): patch_embed.proj.weight"):
        model.load_network(model.net_g, path, True, 'params')
