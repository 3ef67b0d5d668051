"""gloo on CPU-only machines, DDP without device_ids, and num_gpu > 0 without CUDA running on the CPU."""
import torch
from basicsr.models import build_model

from helpers import sr_options
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


def test_num_gpu_without_cuda_runs_on_the_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    parse_options = distributed._cpu_fallback(lambda root_path, is_train=True: ({'num_gpu': 2, 'name': 'x'}, 'args'))
    assert parse_options('.') == ({'num_gpu': 0, 'name': 'x'}, 'args')
    assert 'num_gpu is 2 but CUDA is not available: running on the CPU.' in capsys.readouterr().out
