"""The plugin's resume: a run killed and resumed ends where an uninterrupted run ends (each rank's random states,
the mid-epoch restart), the options file's settings apply, changed parameters are refused."""
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from basicsr.models import build_model

from helpers import REPO_ROOT, in_process, run_entry, slkd_options, sr_options, write_options
from slkd_basicsr.compat.resume import newest_readable_state, read_training_state
from slkd_basicsr.pipeline.resume import load_resume_state, save_training_state
from slkd_basicsr.random_states import rng_state, set_rng_state


def _schedule_model(image_pairs, optim_g, scheduler):
    opt = in_process(sr_options(image_pairs))
    opt['train'].update(optim_g={'type': 'Adam', **optim_g}, scheduler=scheduler, warmup_iter=3)
    return build_model(opt)


def _lrs(model, first, last):
    """The lr of each iteration from ``first`` to ``last``, stepped as BasicSR's training loop does."""
    lrs = []
    for it in range(first, last + 1):
        model.update_learning_rate(it, warmup_iter=model.opt['train']['warmup_iter'])
        lrs.append(model.optimizers[0].param_groups[0]['lr'])
    return lrs


SCHEDULES = {
    'multistep': ({'type': 'MultiStepLR', 'milestones': [20], 'gamma': 0.5},
                  {'type': 'MultiStepLR', 'milestones': [4, 9], 'gamma': 0.1},
                  ['Resume: train.scheduler.milestones [20] -> [4, 9] (options file).',
                   'Resume: train.scheduler.gamma 0.5 -> 0.1 (options file).']),
    'cosine': ({'type': 'CosineAnnealingRestartLR', 'periods': [10, 10], 'restart_weights': [1, 0.5], 'eta_min': 1e-7},
               {'type': 'CosineAnnealingRestartLR', 'periods': [8, 12], 'restart_weights': [1, 0.5], 'eta_min': 1e-6},
               ['Resume: train.scheduler.periods [10, 10] -> [8, 12] (options file).',
                'Resume: train.scheduler.eta_min 1e-07 -> 1e-06 (options file).']),
}


@pytest.mark.parametrize('schedule', SCHEDULES)
def test_resume_continues_as_if_started_with_the_changed_options(image_pairs, schedule, basicsr_log):
    old_scheduler, new_scheduler, scheduler_lines = SCHEDULES[schedule]
    old = _schedule_model(image_pairs, {'lr': 2e-3}, old_scheduler)
    _lrs(old, 1, 6)
    state = {'epoch': 0, 'iter': 6, 'optimizers': [o.state_dict() for o in old.optimizers],
             'schedulers': [s.state_dict() for s in old.schedulers]}

    same = _schedule_model(image_pairs, {'lr': 2e-3}, old_scheduler)
    same.resume_training(state)
    assert not [m for m in basicsr_log if m.startswith('Resume:')]
    assert same.schedulers[0].state_dict() == state['schedulers'][0]

    resumed = _schedule_model(image_pairs, {'lr': 1e-3, 'weight_decay': 1e-4}, new_scheduler)
    resumed.resume_training(state)
    for line in ['Resume: train.optim_g.lr 0.002 -> 0.001 (options file).',
                 'Resume: train.optim_g.weight_decay 0 -> 0.0001 (options file).'] + scheduler_lines:
        assert line in basicsr_log
    assert any(m.startswith('Resume: the current lr of train.optim_g.lr becomes ') for m in basicsr_log)
    assert resumed.optimizers[0].param_groups[0]['weight_decay'] == 1e-4
    uninterrupted = _lrs(_schedule_model(image_pairs, {'lr': 1e-3, 'weight_decay': 1e-4}, new_scheduler), 1, 20)
    assert _lrs(resumed, 7, 20) == pytest.approx(uninterrupted[6:], rel=1e-12)


def _run_options(image_pairs, teachers, tmp_path):
    opt = slkd_options(image_pairs, teachers)
    opt['train']['total_iter'] = 10
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    return write_options(opt, str(tmp_path / 'slkd.yml'))


def _weights(root):
    models = root / 'experiments' / 'tiny_slkd' / 'models'
    return {name: torch.load(models / f'{name}_latest.pth', weights_only=True)['params']
            for name in ('net_g', 'net_scm')}


def test_sigkill_then_auto_resume_matches_uninterrupted_run(image_pairs, teachers, tmp_path):
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', _run_options(image_pairs, teachers, straight)], str(straight))
    assert proc.returncode == 0, proc.stderr[-3000:]

    opt_path = _run_options(image_pairs, teachers, killed)
    states = killed / 'experiments' / 'tiny_slkd' / 'training_states'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHONPATH=REPO_ROOT)
    victim = subprocess.Popen([sys.executable, '-m', 'slkd_basicsr.tools.train', '-opt', opt_path], cwd=str(killed),
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (states / '6.state').exists() and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed / 'experiments' / 'tiny_slkd' / 'models' / 'net_g_latest.pth').exists(), 'killed too late'

    proc = run_entry('slkd_basicsr.tools.train', ['-opt', opt_path, '--auto_resume'], str(killed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming training from epoch' in proc.stdout + proc.stderr
    expected, resumed = _weights(straight), _weights(killed)
    for name in expected:
        assert all(torch.equal(expected[name][k], resumed[name][k]) for k in expected[name]), name


def _log_lines(proc, needle):
    return [line for line in (proc.stdout + proc.stderr).splitlines() if needle in line]


def test_nonfinite_advice_works_and_unreadable_newest_state_is_skipped(image_pairs, teachers, tmp_path, monkeypatch):
    """NonFiniteLossError's advice followed end to end: a huge lr stops the run, the last checkpoint is intact, a
    lower lr and a moved milestone in the options file are applied on --auto_resume (logged), training goes on.
    Meanwhile the newest state is truncated: auto-resume warns, takes the previous one and finishes."""
    opt = slkd_options(image_pairs, teachers)
    opt['train'].update(total_iter=6, max_nonfinite_steps=2)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    opt_path = str(tmp_path / 'slkd.yml')
    experiment = tmp_path / 'experiments' / 'tiny_slkd'
    states = experiment / 'training_states'
    os.umask(0o022)  # the subprocesses inherit it; restored below
    monkeypatch.setattr(os, 'umask', os.umask)

    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, opt_path)], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in (experiment / 'models' / 'net_g_6.pth', experiment / 'models' / 'net_g_latest.pth', states / '6.state'):
        assert path.stat().st_mode & 0o777 == 0o644, path

    # the lr raised far too high: applied on resume, the run diverges and stops before its next save
    opt['train']['optim_g']['lr'] = 1e30
    opt['train']['total_iter'] = 12
    saved = (states / '6.state').read_bytes()
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, opt_path), '--auto_resume'], str(tmp_path))
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert _log_lines(proc, 'Resume: train.optim_g.lr 0.002 -> 1e+30 (options file).')
    assert _log_lines(proc, 'Resume: the current lr of train.optim_g.lr becomes 1e+30 (was 0.002)')
    assert proc.stderr.strip().splitlines()[-1].startswith('slkd-train: 2 steps in a row had a non-finite loss')
    assert (states / '6.state').read_bytes() == saved and not (states / '9.state').exists()

    # the newest state is damaged meanwhile; the advice: lower lr (and a milestone moved), --auto_resume
    (states / '6.state').write_bytes(saved[:len(saved) // 2])
    opt['train']['optim_g']['lr'] = 1e-3
    opt['train']['scheduler']['milestones'] = [8]
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, opt_path), '--auto_resume'], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _log_lines(proc, f"Resume: skipping the unreadable training state '{states / '6.state'}'")
    assert _log_lines(proc, 'Resuming training from epoch: 0, iter: 3.')
    assert _log_lines(proc, 'Resume: train.optim_g.lr 0.002 -> 0.001 (options file).')
    assert _log_lines(proc, 'Resume: train.lr_scm (unset: train.optim_g.lr) 0.002 -> 0.001 (options file).')
    assert _log_lines(proc, 'Resume: train.scheduler.milestones [20] -> [8] (options file).')
    log = proc.stdout + proc.stderr
    lrs = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r'iter:\s*(\d+), lr:\(([0-9.e+-]+),', log)}
    # as in a run started with these options: BasicSR steps the scheduler from iter 2, milestone 8 acts at iter 9
    assert lrs == {**{it: 1e-3 for it in range(4, 9)}, **{it: 5e-4 for it in range(9, 13)}}
    losses = [float(v) for v in re.findall(r'l_total: (\S+)', log)]
    assert len(losses) == 9 and all(math.isfinite(v) for v in losses), log[-3000:]
    assert (states / '12.state').exists() and (experiment / 'models' / 'net_g_latest.pth').exists()


# ---- random states: loaded onto the CPU, robust to their type, per rank, the CUDA generator ----------------------

def _draws():
    """What the python, numpy and torch generators give next."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def _seeded_state(seed):
    """The random states after seeding as parse_options does (manual_seed + rank) and drawing a little, and the
    draws that follow them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    _draws()
    state = rng_state()
    return state, _draws()


def _state_file(tmp_path, rng, it=4):
    path = tmp_path / f'{it}.state'
    torch.save({'epoch': 1, 'iter': it, 'optimizers': [], 'schedulers': [], 'rng': rng}, str(path))
    return str(path)


def test_a_state_is_read_onto_the_cpu_on_a_gpu_machine(tmp_path, monkeypatch):
    """A GPU run used to map the state onto its GPU, and then torch.set_rng_state refused the CUDA tensor."""
    state, expected = _seeded_state(7)
    _state_file(tmp_path, [state])
    _draws()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # as on a GPU machine running num_gpu: 1
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    opt = {'path': {'training_states': str(tmp_path)}, 'num_gpu': 1, 'rank': 0, 'world_size': 1}
    _, loaded, notes = newest_readable_state(opt)
    assert notes == [] and loaded['rng'][0]['torch'].device.type == 'cpu'
    set_rng_state(loaded['rng'][0])
    assert _draws() == expected


@pytest.mark.parametrize('retype', [lambda t: t.long(), lambda t: t.tolist(), lambda t: t.clone()],
                         ids=['int64', 'list', 'uint8'])
def test_set_rng_state_takes_a_generator_state_in_another_type(retype):
    """torch.set_rng_state takes only a CPU uint8 tensor (else 'TypeError: RNG state must be a
    torch.ByteTensor', as for a CUDA tensor, which this machine cannot make)."""
    state, expected = _seeded_state(3)
    _draws()
    set_rng_state({**state, 'torch': retype(state['torch'])})
    assert _draws() == expected


@pytest.fixture
def fake_cuda_generator(monkeypatch):
    """CUDA 'available and initialised' with a recorded generator: get_rng_state gives ``current``, each
    set_rng_state call is appended to ``set``."""
    fake = {'current': torch.arange(16, dtype=torch.uint8), 'set': []}
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_rng_state', lambda device='cuda': fake['current'].clone())
    monkeypatch.setattr(torch.cuda, 'set_rng_state', lambda state, device='cuda': fake['set'].append(state))
    return fake


def test_the_cuda_generator_is_saved_and_restored(fake_cuda_generator, monkeypatch):
    state = rng_state()
    assert torch.equal(state['cuda'], fake_cuda_generator['current'])
    set_rng_state({**state, 'cuda': state['cuda'].long()})  # e.g. re-typed on the way
    (restored, ) = fake_cuda_generator['set']
    assert restored.dtype == torch.uint8 and restored.device.type == 'cpu'
    assert torch.equal(restored, fake_cuda_generator['current'])

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # a GPU run's state resumed on the CPU
    set_rng_state(state)
    assert len(fake_cuda_generator['set']) == 1


def test_no_cuda_generator_is_saved_before_cuda_is_initialised(fake_cuda_generator, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: False)
    assert 'cuda' not in rng_state()


def _fake_world(monkeypatch, rank, states):
    """Make this process rank ``rank`` of a world of ``len(states)``, the other ranks holding ``states``."""
    gathered = []

    def all_gather_object(out, obj):
        gathered.append(obj)
        out[:] = [obj if r == rank else states[r] for r in range(len(states))]

    monkeypatch.setattr(torch.distributed, 'is_available', lambda: True)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'get_world_size', lambda: len(states))
    monkeypatch.setattr(torch.distributed, 'all_gather_object', all_gather_object)
    return gathered


def _saving_model(tmp_path, rank):
    return SimpleNamespace(opt={'rank': rank, 'path': {'training_states': str(tmp_path)}}, optimizers=[],
                           schedulers=[])


def test_every_rank_saves_its_random_states_and_resumes_its_own(tmp_path, monkeypatch):
    """Two ranks seeded manual_seed + rank: the state holds both, in rank order, and each rank resumes its own
    stream (rank 0 alone writes; rank 1 only takes part in the gathering)."""
    seeded = [_seeded_state(10 + rank) for rank in (0, 1)]
    states = [state for state, _ in seeded]
    for rank in (1, 0):  # rank 0 last: the file must come from it
        set_rng_state(states[rank])  # this process plays the rank
        gathered = _fake_world(monkeypatch, rank, states)
        save_training_state(_saving_model(tmp_path, rank), 1, 4)
        assert len(gathered) == 1, 'every rank enters the gathering'
        assert os.listdir(tmp_path) == ([] if rank else ['4.state'])
    saved = read_training_state(str(tmp_path / '4.state'))['rng']
    assert [torch.equal(entry['torch'], state['torch']) for entry, state in zip(saved, states)] == [True, True]

    for rank, (_, expected) in enumerate(seeded):
        opt = {'auto_resume': False, 'rank': rank, 'world_size': 2, 'path': {'resume_state': str(tmp_path / '4.state')}}
        load_resume_state(opt)
        _draws()
        set_rng_state(opt['resume_position'].rng)
        assert _draws() == expected, f'rank {rank}'


def test_the_final_save_gathers_nothing(tmp_path, monkeypatch):
    gathered = _fake_world(monkeypatch, 0, [None, None])
    save_training_state(_saving_model(tmp_path, 0), -1, -1)
    assert gathered == [] and os.listdir(tmp_path) == []


def test_an_old_state_with_one_random_state_is_restored_by_every_rank(tmp_path):
    state, expected = _seeded_state(5)
    path = _state_file(tmp_path, state)
    for rank in (0, 1):
        opt = {'auto_resume': False, 'rank': rank, 'world_size': 2, 'path': {'resume_state': path}}
        load_resume_state(opt)
        assert opt['resume_position'].notes == []
        set_rng_state(opt['resume_position'].rng)
        assert _draws() == expected


def test_another_world_size_restarts_the_epoch_without_restoring(tmp_path):
    path = _state_file(tmp_path, [_seeded_state(10)[0], _seeded_state(11)[0]])
    opt = {'auto_resume': False, 'rank': 0, 'world_size': 1, 'path': {'resume_state': path}}
    load_resume_state(opt)
    assert opt['resume_position'].rng is None
    assert opt['resume_position'].notes == [
        'Resume: the training state holds the random states of 2 process(es), this run has 1: the current epoch '
        'restarts from its first batch and no random state is restored (each rank keeps the one seeded from '
        'manual_seed + rank).']


# ---- resume after a change of the loss terms or of the batch (issue 26) -----------------------------------------

def _slkd_model(image_pairs, teachers, features):
    opt = in_process(slkd_options(image_pairs, teachers))
    opt['path']['resume_state'] = 'experiments/tiny_slkd/training_states/4.state'
    if not features:
        opt['train'].update(nc_opt=None, et_opt=None)
    return build_model(opt)


@pytest.mark.parametrize('saved_features, features', [(True, False), (False, True)],
                         ids=['feature terms removed', 'feature terms added'])
def test_resume_after_the_param_groups_changed_is_refused(image_pairs, teachers, saved_features, features):
    """The SCM is a param group of its own only with feature terms; torch's load_state_dict would raise
    'loaded state dict has a different number of parameter groups'."""
    from slkd_basicsr.checks.options import OptionsError

    saved = _slkd_model(image_pairs, teachers, saved_features)
    state = {'epoch': 0, 'iter': 4, 'optimizers': [o.state_dict() for o in saved.optimizers],
             'schedulers': [s.state_dict() for s in saved.schedulers]}
    groups = (2, 1) if saved_features else (1, 2)
    labels = 'train.optim_g.lr' + ('' if saved_features else ', train.lr_scm (unset: train.optim_g.lr)')
    with pytest.raises(OptionsError) as err:
        _slkd_model(image_pairs, teachers, features).resume_training(state)
    assert str(err.value) == (
        f"resuming from 'experiments/tiny_slkd/training_states/4.state': train.optim_g has {groups[0]} param "
        f'group(s) in the training state, {groups[1]} from the options file ({labels}). The trained parameters '
        'changed since the state was saved: with SLKDModel the SCM is a param group of its own while a feature term '
        '(train.nc_opt, train.et_opt) is on, so one was added or removed (or its taps changed). The saved optimiser '
        "cannot continue other parameters: put the state's loss terms back to resume, or start a new run (a new "
        "name, or without --auto_resume and path.resume_state: BasicSR then archives this experiment's folder).")


def test_parameter_mismatch_names_the_group_and_the_shape():
    from slkd_basicsr.checks.run import parameter_mismatch

    def adam(*shapes):
        params = [torch.nn.Parameter(torch.ones(shape)) for shape in shapes]
        optimizer = torch.optim.Adam([{'params': params[:1]}, {'params': params[1:]}])
        for param in params:
            param.grad = torch.ones_like(param)
        optimizer.step()
        return optimizer

    saved = adam((3, 3), (4, ), (2, ))
    assert parameter_mismatch(adam((3, 3), (4, ), (2, )).param_groups, saved.state_dict()) is None
    assert parameter_mismatch(adam((3, 3), (4, )).param_groups, saved.state_dict()) == (
        'param group 1 holds 2 tensors in the training state, 1 from the options file')
    assert parameter_mismatch(adam((3, 3), (5, ), (2, )).param_groups, saved.state_dict()) == (
        'a tensor of param group 1 has shape (4,) in the training state, (5,) from the options file')


class _Log:
    """A logger that keeps what it is given."""

    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(('info', message))

    def warning(self, message):
        self.lines.append(('warning', message))


def _loaders(opt, batch, images):
    """What create_train_val_dataloader gives for a dataset of ``images`` items and a batch of ``batch``."""
    from basicsr.data.data_sampler import EnlargedSampler

    from slkd_basicsr.pipeline.resume import _resumable_loaders

    dataset = list(range(images))
    sampler = EnlargedSampler(dataset, 1, 0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True)
    log = _Log()
    _resumable_loaders(lambda opt, logger: (loader, sampler, [], 9, 99))(opt, log)
    return sampler, log.lines


RESTART = ': the current epoch restarts from its first batch and no random state is restored (each rank keeps the ' \
          'one seeded from manual_seed + rank).'


@pytest.mark.parametrize('saved_shape, batch, images, epoch, it, expected', [
    ({'batch_size': 2, 'iters_per_epoch': 4, 'dataset_size': 8, 'samples_per_epoch': 8}, 2, 8, 1, 6,
     ('info', 'Resuming inside epoch 1: skipping its first 2 batches.')),
    ({'batch_size': 2, 'iters_per_epoch': 4, 'dataset_size': 8, 'samples_per_epoch': 8}, 1, 8, 1, 6,
     ('warning', 'Resume: the training state was saved with epochs of another shape (batch size per process 2 -> 1, '
      'iterations per epoch 4 -> 8)' + RESTART)),
    ({'batch_size': 2, 'iters_per_epoch': 4, 'dataset_size': 8, 'samples_per_epoch': 8}, 2, 9, 0, 3,
     ('warning', 'Resume: the training state was saved with epochs of another shape (dataset size 8 -> 9, samples '
      'per epoch (all processes) 8 -> 9)' + RESTART)),
    (None, 1, 8, 1, 6,  # a state of an older version: -2 batches to skip
     ('warning', "Resume: the training state (epoch 1, iter 6) does not fall inside epoch 1 of this run's 8 "
      'iterations per epoch (the batch size or the dataset changed)' + RESTART)),
    (None, 2, 8, 1, 6, ('info', 'Resuming inside epoch 1: skipping its first 2 batches.')),
], ids=['same', 'batch changed', 'dataset changed', 'old state, negative', 'old state, inside'])
def test_a_resume_skips_batches_only_in_an_epoch_of_the_saved_shape(saved_shape, batch, images, epoch, it, expected):
    from slkd_basicsr.pipeline.resume import ResumePosition

    opt = {'resume_position': ResumePosition(epoch, it, rng_state(), [], saved_shape)}
    sampler, lines = _loaders(opt, batch, images)
    assert lines == [expected]
    skipped = expected[0] == 'info'
    assert (getattr(sampler, 'resume', None) is not None) == skipped
    if skipped:
        assert sampler.resume['skip'] == 2 * batch
    assert opt['epoch_shape'] == {'batch_size': batch, 'iters_per_epoch': images // batch, 'dataset_size': images,
                                  'samples_per_epoch': images}


def test_a_training_state_records_its_epoch_shape(tmp_path):
    model = _saving_model(tmp_path, 0)
    model.opt['epoch_shape'] = {'batch_size': 2, 'iters_per_epoch': 4, 'dataset_size': 8, 'samples_per_epoch': 8}
    save_training_state(model, 1, 6)
    opt = {'auto_resume': False, 'rank': 0, 'world_size': 1, 'path': {'resume_state': str(tmp_path / '6.state')}}
    load_resume_state(opt)
    assert opt['resume_position'].epoch_shape == model.opt['epoch_shape']


def _contents(folder):
    """Every file and folder under ``folder``, with each file's bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob('*')}


def test_auto_resume_after_removing_feature_terms_or_changing_the_batch(image_pairs, teachers, tmp_path):
    """slkd-train --auto_resume: feature terms removed, or a student of another width -> one line, exit 2, the
    experiment folder as it was (its options copy and log included: refused before anything is written); a smaller
    batch -> a warning, the epoch restarts (BasicSR logged 'skipping its first -2 batches'), training goes on."""
    opt = slkd_options(image_pairs, teachers)
    opt['train']['total_iter'] = 6
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    opt['val']['val_freq'] = 100
    opt_path = str(tmp_path / 'slkd.yml')
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, opt_path)], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    experiment = tmp_path / 'experiments' / 'tiny_slkd'
    before = _contents(experiment)
    assert {'slkd.yml', 'models/net_g_6.pth', 'training_states/6.state'} <= set(before)

    features_off = dict(opt, train={**opt['train'], 'nc_opt': None, 'et_opt': None, 'total_iter': 9})
    wider = dict(opt, network_g={**opt['network_g'], 'dim': 16})
    refusals = [
        (features_off,
         "slkd-train: resuming from "
         f"'{experiment / 'training_states' / '6.state'}': train.optim_g has 2 param group(s) in the training state, "
         '1 from the options file (train.optim_g.lr). The trained parameters changed since the state was saved'),
        (wider, f"slkd-train: '{experiment / 'models' / 'net_g_6.pth'}' does not fit Restormer: shape mismatch"),
    ]
    for options, expected in refusals:
        proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(options, opt_path), '--auto_resume'],
                         str(tmp_path))
        assert proc.returncode == 2 and proc.stderr.startswith(expected), proc.stderr[-3000:]
        assert proc.stderr.count('\n') == 1, proc.stderr[-3000:]
        assert _contents(experiment) == before

    opt['train']['total_iter'] = 9
    opt['datasets']['train']['batch_size_per_gpu'] = 1
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, opt_path), '--auto_resume'], str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _log_lines(proc, 'Resume: the training state was saved with epochs of another shape (batch size per '
                            'process 2 -> 1, iterations per epoch 4 -> 8): the current epoch restarts from its first '
                            'batch')
    assert not _log_lines(proc, 'skipping its first')
    assert (experiment / 'training_states' / '9.state').exists()
