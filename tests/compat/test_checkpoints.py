"""Checkpoints: read without running pickled code, with clear errors; written atomically."""
import collections
import errno
import logging
import os
import pickle
import re

import pytest
import torch
from basicsr.models import build_model
from basicsr.models.lr_scheduler import MultiStepRestartLR

from helpers import sr_options
from slkd_basicsr.compat import checkpoints


class _Payload:
    """Pickles into a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def model(image_pairs):
    """An SRModel built for testing (no training state): its ``load_network`` is the one ``compat.apply()`` installs."""
    opt = sr_options(image_pairs)
    opt.update(is_train=False, dist=False, rank=0)
    return build_model(opt)


def test_resume_state_with_counter_loads_weights_only(tmp_path):
    net = torch.nn.Conv2d(3, 3, 1)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    scheduler = MultiStepRestartLR(optimizer, milestones=[10, 20], gamma=0.5)
    net(torch.rand(1, 3, 4, 4)).sum().backward()
    optimizer.step()
    state = {'epoch': 1, 'iter': 5, 'optimizers': [optimizer.state_dict()], 'schedulers': [scheduler.state_dict()]}
    assert isinstance(state['schedulers'][0]['milestones'], collections.Counter)
    path = str(tmp_path / '5.state')
    checkpoints.atomic_torch_save(state, path)
    loaded = checkpoints.safe_load(path)
    assert loaded['schedulers'][0]['milestones'] == collections.Counter({10: 1, 20: 1})
    assert torch.equal(loaded['optimizers'][0]['state'][0]['exp_avg'], optimizer.state_dict()['state'][0]['exp_avg'])


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        torch.save({'params': {'w': torch.zeros(1)}, 'x': _Payload(str(marker))}, f, pickle_module=pickle)
    with pytest.raises(checkpoints.CheckpointError, match='weights_only=True'):
        checkpoints.safe_load(str(path), what='teacher A checkpoint')
    assert not marker.exists()


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match='nowhere.pth'):
        checkpoints.safe_load(str(tmp_path / 'nowhere.pth'))


def test_atomic_save_leaves_no_temporary_files(tmp_path):
    checkpoints.atomic_torch_save({'a': torch.ones(2)}, str(tmp_path / 'x.pth'))
    assert os.listdir(tmp_path) == ['x.pth']


def test_load_network_names_missing_param_key(model, tmp_path):
    path = str(tmp_path / 'net.pth')
    torch.save({'weights': model.net_g.state_dict()}, path)
    with pytest.raises(checkpoints.CheckpointError, match="no key 'params'"):
        model.load_network(model.net_g, path, True, 'params')
    torch.save({'params': {'module.' + k: v for k, v in model.net_g.state_dict().items()}}, path)
    model.load_network(model.net_g, path, True, 'params')


TINY_NAFNET = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]}


def test_load_network_builds_from_options_and_loads_as_basicsr_does(tmp_path):
    """From a network_* section: params_ema missing -> params, a ``module.`` prefix (a DDP checkpoint) stripped, the
    network returned in eval mode; the same CheckpointError as the trainer's for a missing key."""
    from basicsr.archs import build_network

    net = build_network(dict(TINY_NAFNET))
    for p in net.parameters():
        torch.nn.init.normal_(p)
    path = str(tmp_path / 'ddp.pth')
    torch.save({'params': {f'module.{k}': v for k, v in net.state_dict().items()}}, path)
    loaded = checkpoints.load_network(TINY_NAFNET, path, param_key='params_ema')
    assert not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())
    torch.save({'weights': net.state_dict()}, path)
    with pytest.raises(checkpoints.CheckpointError, match=r"ddp.pth' has no key 'params' \(it has \['weights'\]\)"):
        checkpoints.load_network(TINY_NAFNET, path)


def test_load_network_into_a_network_skips_other_shapes_when_not_strict_and_logs_as_basicsr(tmp_path, caplog):
    """A network given keeps its mode; strict false skips a tensor of another shape (as BasicSR does, which would
    otherwise fail in load_state_dict) and logs BasicSR's lines to the logger given."""
    from basicsr.archs import build_network

    source, target = build_network(dict(TINY_NAFNET)), build_network(dict(TINY_NAFNET)).train()
    state = source.state_dict()
    state['ending.bias'] = torch.zeros(5)
    path = str(tmp_path / 'head.pth')
    torch.save({'params': state}, path)
    own_bias = target.ending.bias.detach().clone()
    logger = logging.getLogger('test_load_network')
    with caplog.at_level(logging.INFO, logger=logger.name):
        assert checkpoints.load_network(target, path, strict=False, logger=logger) is target
    assert target.training and torch.equal(target.ending.bias, own_bias)
    assert torch.equal(target.intro.weight, source.intro.weight)
    assert [r.getMessage() for r in caplog.records] == [
        f'Loading NAFNet model from {path}, with param key: [params].',
        'Size different, ignore [ending.bias]: crt_net: torch.Size([3]); load_net: torch.Size([5])']


def test_strict_load_mismatch_names_file_and_keys(model, tmp_path):
    state = model.net_g.state_dict()
    state.pop('output.weight')
    state['patch_embed.proj.weight'] = torch.zeros(1, 3, 3, 3)
    path = str(tmp_path / 'other.pth')
    torch.save({'params': state}, path)
    with pytest.raises(checkpoints.CheckpointError, match=r"other.pth.*missing in the file \(1\): output.weight.*"
                       r"shape mismatch \(1\): patch_embed.proj.weight"):
        model.load_network(model.net_g, path, True, 'params')


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_save_gives_the_mode_the_umask_gives(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        checkpoints.atomic_torch_save({'a': torch.ones(2)}, str(tmp_path / 'x.pth'))
    finally:
        os.umask(previous)
    assert (tmp_path / 'x.pth').stat().st_mode & 0o777 == mode


class _FullDisk:
    """A file object whose writes fail with ENOSPC after the first 100 bytes."""

    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, data):
        self.written += len(data)
        if self.written > 100:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _no_permission(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


@pytest.mark.parametrize('failure, reason', [('disk full', r'No space left on device \(ENOSPC\)'),
                                             ('permission', r'Permission denied \(EACCES\)')])
def test_failed_save_names_file_and_reason_and_leaves_no_temporary_file(tmp_path, monkeypatch, failure, reason):
    path = tmp_path / 'net_g_6.pth'
    checkpoints.atomic_torch_save({'a': torch.ones(2)}, str(path))
    before = path.read_bytes()
    if failure == 'disk full':
        fdopen = os.fdopen
        monkeypatch.setattr(os, 'fdopen', lambda *args, **kwargs: _FullDisk(fdopen(*args, **kwargs)))
    else:
        monkeypatch.setattr(os, 'open', _no_permission)
    with pytest.raises(checkpoints.CheckpointError) as info:
        checkpoints.atomic_torch_save({'a': torch.rand(1000)}, str(path))
    assert re.match(rf"Cannot save '{re.escape(str(path))}': {reason}\. No temporary file is left", str(info.value))
    assert os.listdir(tmp_path) == ['net_g_6.pth'] and path.read_bytes() == before


def test_empty_truncated_and_non_dict_checkpoints_get_checkpoint_errors(model, tmp_path):
    path = str(tmp_path / 'net.pth')
    torch.save({'params': model.net_g.state_dict()}, path)
    data = open(path, 'rb').read()
    cases = [(b'', r"'.*net.pth': the file is empty \(0 bytes\)"),
             (data[:len(data) // 2], r"'.*net.pth': the file is damaged or truncated \(RuntimeError: "),
             (torch.zeros(3, 4), r"net.pth' holds a Tensor of shape \(3, 4\), not a dict of tensors"),
             ([1, 2], r"net.pth' holds a list, not a dict of tensors"),
             ({'params': torch.zeros(2)}, r"net.pth': 'params' holds a Tensor of shape \(2,\), not a state dict")]
    for content, message in cases:
        if isinstance(content, bytes):
            open(path, 'wb').write(content)
        else:
            torch.save(content, path)
        with pytest.raises(checkpoints.CheckpointError, match=message):
            model.load_network(model.net_g, path, True, 'params')


def test_non_finite_parameters_are_refused_naming_the_first(model, tmp_path):
    state = model.net_g.state_dict()
    first, second = list(state)[1], list(state)[4]
    state[first].view(-1)[:3] = float('nan')
    state[second].view(-1)[0] = float('inf')
    path = str(tmp_path / 'diverged.pth')
    torch.save({'params': state}, path)
    with pytest.raises(checkpoints.CheckpointError, match=rf"Restormer checkpoint '.*diverged.pth' has non-finite "
                       rf"values in '{re.escape(first)}' \(3 NaN, 0 inf of \d+\) and 1 more parameters"):
        model.load_network(model.net_g, path, True, 'params')


def test_a_non_strict_load_that_fits_almost_nothing_is_refused(model, tmp_path):
    """strict_load_g: false with a checkpoint of another width: BasicSR ignores every tensor of another shape and
    would test or export a random network; most of the network fitted, the load goes on (fine-tuning)."""
    from basicsr.archs import build_network

    from helpers import tiny_teacher

    total = len(model.net_g.state_dict())
    wider = str(tmp_path / 'wider.pth')
    torch.save({'params': build_network(tiny_teacher()).state_dict()}, wider)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    with pytest.raises(checkpoints.CheckpointError) as err:
        model.load_network(model.net_g, wider, False, 'params')
    fitted = int(re.search(r'fits only (\d+) of', str(err.value)).group(1))
    assert fitted < total / 2
    assert str(err.value) == (
        f"Restormer checkpoint '{wider}' fits only {fitted} of the network's {total} tensors (same name and shape): "
        f'even with strict_load_* false, the other {total - fitted} would keep their random initial values. The file '
        'was saved from another arch or size: point the path at a checkpoint of this network, or make the network '
        'options match the file (strict_load_* true lists every difference).')
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())

    state = dict(before)
    state['output.weight'] = torch.zeros(1)  # one tensor of another shape (a new head): the rest loads
    del state['patch_embed.proj.weight']
    partial = str(tmp_path / 'partial.pth')
    torch.save({'params': state}, partial)
    model.load_network(model.net_g, partial, False, 'params')
