"""The options check: every problem of an options file in one message, before anything is made."""
import copy
import glob
import sys
from os import path as osp

import pytest
import torch
from basicsr.data import build_dataloader
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.models.sr_model import SRModel
from basicsr.utils.options import parse_options
from basicsr.utils.registry import MODEL_REGISTRY

from helpers import REPO_ROOT, in_process, slkd_options, sr_options, write_options
from slkd_basicsr.checks.options import (OptionsError, check_options, dist_params_problems, options_problems,
                                         options_warnings, read_options_file)
from slkd_basicsr.checks.run import check_iterations_per_epoch, iterations_per_epoch
from slkd_basicsr.checks.types import UnknownTypeError, check_option_types
from slkd_basicsr.checks.values import suggest

OPTION_FILES = sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')))
PAIRS = {'train': {'gt': 'data/train/gt', 'lq': 'data/train/lq'}, 'val': {'gt': 'data/val/gt', 'lq': 'data/val/lq'}}
TEACHERS = {'a': 'teacher_a.pth', 'b': 'teacher_b.pth'}


def slkd():
    """Tiny SLKD options as parse_options returns them (no file is read by the check)."""
    opt = in_process(slkd_options(PAIRS, TEACHERS))
    opt['distill'].update(encoder_taps=['encoder_level1', 'latent'], decoder_taps=['decoder_level1'])
    return opt


def sr_test():
    """Tiny slkd-test options: an SRModel, test_1 dataset, a checkpoint to test."""
    opt = in_process(sr_options(PAIRS))
    opt.update(is_train=False, name='test_tiny')
    for key in ('train', 'logger'):
        del opt[key]
    opt['datasets'] = {'test_1': opt['datasets']['val']}
    opt['path']['pretrain_network_g'] = 'net_g_latest.pth'
    del opt['val']['val_freq']
    return opt


def edited(opt, edit):
    opt = copy.deepcopy(opt)
    edit(opt)
    return opt


def message(opt, is_train=True):
    with pytest.raises(OptionsError) as err:
        check_options(opt, is_train)
    return str(err.value)


@pytest.mark.parametrize('make', [slkd, lambda: in_process(sr_options(PAIRS))], ids=['slkd', 'sr'])
def test_the_tiny_options_of_the_tests_pass(make):
    check_options(make(), True)


def test_slkd_test_options_pass():
    check_options(sr_test(), False)


@pytest.mark.parametrize('path', OPTION_FILES, ids=osp.basename)
def test_every_shipped_options_file_passes_unchanged(path, monkeypatch, tmp_path):
    is_train = not osp.basename(path).startswith('test_')
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', path])
    opt, _ = parse_options(str(tmp_path), is_train=is_train)
    check_options(opt, is_train)
    check_options(read_options_file(path), is_train)  # the raw file too, before parse_options adds its keys


# ---- the cases of issue 14 ---------------------------------------------------------------------------------------

CASES = [
    ('total_iter 0', lambda o: o['train'].update(total_iter=0),
     'train.total_iter: 0 is out of range; it must be >= 1.'),
    ('kd_op typo', lambda o: o['train'].update(kd_op=o['train'].pop('kd_opt')),
     'train.kd_op: unknown key. Did you mean: train.kd_opt?'),
    ('encoder_tap typo', lambda o: o['distill'].update(encoder_tap=o['distill'].pop('encoder_taps')),
     'distill.encoder_tap: unknown key. Did you mean: distill.encoder_taps, distill.decoder_taps, '
     'distill.teacher_amp?'),
    ('negative kd weight', lambda o: o['train']['kd_opt'].update(loss_weight=-0.5),
     'train.kd_opt.loss_weight: -0.5 is out of range; it must be >= 0.'),
    ('lr abc', lambda o: o['train']['optim_g'].update(lr='abc'),
     "train.optim_g.lr: must be a number, got 'abc'."),
    ('lr 2e-4 read as a string', lambda o: o['train']['optim_g'].update(lr='2e-4'),
     "train.optim_g.lr: must be a number, got '2e-4' (a string: write 0.0002 or !!float 2e-4)."),
    ('lr 0', lambda o: o['train']['optim_g'].update(lr=0), 'train.optim_g.lr: 0 is out of range; it must be > 0.'),
    ('gt_size -1', lambda o: o['datasets']['train'].update(gt_size=-1),
     'datasets.train.gt_size: -1 is out of range; it must be >= 1.'),
    ('loss_weight 0.1x', lambda o: o['train']['nc_opt'].update(loss_weight='0.1x'),
     "train.nc_opt.loss_weight: must be a number, got '0.1x'."),
    ('taps as a string', lambda o: o['distill'].update(encoder_taps='encoder_level1'),
     'distill.encoder_taps: a single name; write a list: [encoder_level1]'),
    ('enlarge ratio 0', lambda o: o['datasets']['train'].update(dataset_enlarge_ratio=0),
     'datasets.train.dataset_enlarge_ratio: 0 is out of range; it must be >= 1.'),
    ('name ../x', lambda o: o.update(name='../x'), "name: '../x' names a folder outside experiments/"),
    ('name with a separator', lambda o: o.update(name='a/b'), "name: 'a/b' names a folder outside experiments/"),
    ('no network_g', lambda o: o.pop('network_g'), 'network_g: missing; this section is required.'),
    ('no train dataset', lambda o: o['datasets'].pop('train'),
     'datasets.train: missing; training needs a train dataset.'),
    ('no total_iter', lambda o: o['train'].pop('total_iter'), 'train.total_iter: missing'),
    ('no train section', lambda o: o.pop('train'), 'train: missing; this section is required.'),
    ('batch 0', lambda o: o['datasets']['train'].update(batch_size_per_gpu=0),
     'datasets.train.batch_size_per_gpu: 0 is out of range; it must be >= 1.'),
    ('negative workers', lambda o: o['datasets']['train'].update(num_worker_per_gpu=-1),
     'datasets.train.num_worker_per_gpu: -1 is out of range; it must be >= 0.'),
    ('print_freq 0', lambda o: o['logger'].update(print_freq=0), 'logger.print_freq: 0 is out of range'),
    ('val_freq 0', lambda o: o['val'].update(val_freq=0), 'val.val_freq: 0 is out of range'),
    ('save_checkpoint_freq 0', lambda o: o['logger'].update(save_checkpoint_freq=0.0),
     'logger.save_checkpoint_freq: 0.0 is out of range'),
    ('distil', lambda o: o.update(distil=o.pop('distill')), 'distil: unknown key. Did you mean: distill?'),
    ('teacher c', lambda o: o.update(network_teacher_c={}),
     'network_teacher_c: SLKDModel reads only network_teacher_a and network_teacher_b.'),
    ('kd temperature typo', lambda o: o['train']['kd_opt'].update(temprature=2),
     'train.kd_opt.temprature: ImageKLLoss takes no such argument. Did you mean: train.kd_opt.temperature?'),
    ('teacher arch arg typo', lambda o: o['network_teacher_a'].update(dimm=8),
     'network_teacher_a.dimm: Restormer takes no such argument. Did you mean: network_teacher_a.dim?'),
    ('student arch arg typo', lambda o: o['network_g'].update(num_block=[1, 1, 1, 1]),
     'network_g.num_block: Restormer takes no such argument. Did you mean: network_g.num_blocks'),
    ('path typo', lambda o: o['path'].update(pretrain_network_teacher_c='c.pth'),
     'path.pretrain_network_teacher_c: unknown key. Did you mean: path.pretrain_network_teacher_'),
    ('path flag typo', lambda o: o['path'].update(strict_load_teacher=False),
     'path.strict_load_teacher: unknown key. Did you mean: path.strict_load_teacher_'),
    ('strict_load not a bool', lambda o: o['path'].update(strict_load_g='yes'),
     "path.strict_load_g: must be true or false, got 'yes' (a quoted string)."),
    ('no teacher A', lambda o: o.pop('network_teacher_a'),
     'network_teacher_a: missing; train.kd_opt, train.nc_opt needs teacher A.'),
    ('no teacher B checkpoint', lambda o: o['path'].update(pretrain_network_teacher_b=None),
     "path.pretrain_network_teacher_b: not set; train.et_opt needs teacher B's trained checkpoint."),
    ('no pixel loss', lambda o: o['train'].pop('pixel_opt'),
     'train.pixel_opt: missing; SLKDModel needs pixel_opt or perceptual_opt'),
    ('unknown SLKD train key', lambda o: o['train'].update(ssim_opt={'type': 'L1Loss'}),
     'train.ssim_opt: unknown key.'),
    ('another model\'s key', lambda o: o['train'].update(optim_d={'type': 'Adam', 'lr': 1e-4}),
     'train.optim_d: SLKDModel does not read it (other BasicSR models do); it would be ignored.'),
    ('empty taps with their loss', lambda o: o['distill'].update(decoder_taps=[]),
     'distill.decoder_taps: empty while its loss is enabled'),
    ('bad tap entry', lambda o: o['distill'].update(decoder_taps=[['a', 'b', 'c']]),
     "distill.decoder_taps[0]: must be a module name or a [student, teacher] pair, got ['a', 'b', 'c']."),
    ('scm mode', lambda o: o['distill'].update(scm_resize_mode='bilinaer'),
     "distill.scm_resize_mode: must be one of nearest, nearest-exact, bilinear, bicubic, area, got 'bilinaer'."),
    ('dataset key typo', lambda o: o['datasets']['train'].update(use_flip=True),
     'datasets.train.use_flip: unknown key. Did you mean: datasets.train.use_hflip'),
    ('train_1 is not a phase', lambda o: o['datasets'].update(train_1=o['datasets']['val']),
     'datasets.train_1: not a dataset phase here'),
    ('val.metric', lambda o: o['val'].update(metric=o['val'].pop('metrics')),
     'val.metric: unknown key. Did you mean: val.metrics'),
    ('scheduler arg typo', lambda o: o['train']['scheduler'].update(milestone=[5]),
     'train.scheduler.milestone: MultiStepLR takes no such argument. Did you mean: train.scheduler.milestones'),
    ('optimizer arg typo', lambda o: o['train']['optim_g'].update(weight_decy=0.1),
     'train.optim_g.weight_decy: Adam takes no such argument. Did you mean: train.optim_g.weight_decay'),
    ('negative weight decay', lambda o: o['train']['optim_g'].update(weight_decay=-1),
     'train.optim_g.weight_decay: -1 is out of range'),
    ('batch a float', lambda o: o['datasets']['train'].update(batch_size_per_gpu=2.0),
     'datasets.train.batch_size_per_gpu: must be a whole number, got 2.0.'),
    ('max_nonfinite_steps 0', lambda o: o['train'].update(max_nonfinite_steps=0),
     'train.max_nonfinite_steps: 0 is out of range; it must be >= 1.'),
    ('anneal_iters 0', lambda o: o['distill'].update(anneal_iters=0),
     'distill.anneal_iters: 0 is out of range; it must be >= 1.'),
    ('anneal_iters a fraction', lambda o: o['distill'].update(anneal_iters=0.5),
     'distill.anneal_iters: must be a whole number, got 0.5.'),
    ('timeout 0', lambda o: o.update(dist_params={'timeout_minutes': 0}),
     'dist_params.timeout_minutes: 0 is out of range; it must be > 0.'),
    ('timeout negative', lambda o: o.update(dist_params={'timeout_minutes': -5}),
     'dist_params.timeout_minutes: -5 is out of range; it must be > 0.'),
    ('timeout a string', lambda o: o.update(dist_params={'timeout_minutes': 'long'}),
     "dist_params.timeout_minutes: must be a number, got 'long'."),
    ('timeout a bool', lambda o: o.update(dist_params={'timeout_minutes': True}),
     'dist_params.timeout_minutes: must be a number, got True.'),
    ('timeout typo', lambda o: o.update(dist_params={'timeout': 30}),
     'dist_params.timeout: unknown key. Did you mean: dist_params.timeout_minutes?'),
    ('dist_params not a mapping', lambda o: o.update(dist_params=30),
     'dist_params: must be a mapping of options, got 30.'),
    ('port out of range', lambda o: o.update(dist_params={'port': 70000}),
     'dist_params.port: 70000 is out of range; it must be between 1 and 65535.'),
    # issue 26: types of arch and loss arguments, a training that trains nothing, EMA, seeds
    ('global_residual a quoted string', lambda o: o['network_teacher_b'].update(global_residual='false'),
     "network_teacher_b.global_residual: must be true or false, got 'false' (a quoted string)."),
    ('bias 0', lambda o: o['network_g'].update(bias=0), 'network_g.bias: must be true or false, got 0.'),
    # options the arch refuses itself, found by building it on the meta device
    ('a global residual between other channels', lambda o: o['network_teacher_a'].update(out_channels=1),
     'network_teacher_a: Restormer refuses these options: global_residual adds the input to the output, so '),
    ('heads that do not divide the channels', lambda o: o['network_g'].update(heads=[3, 1, 1, 1]),
     'network_g: Restormer refuses these options: heads[0]=3 must divide the '),
    ('dim a quoted number', lambda o: o['network_g'].update(dim='8'),
     "network_g.dim: must be a whole number, got '8' (a quoted string)."),
    ('dim a fraction', lambda o: o['network_teacher_a'].update(dim=8.5),
     'network_teacher_a.dim: must be a whole number, got 8.5.'),
    ('blocks a number', lambda o: o['network_g'].update(num_blocks=4), 'network_g.num_blocks: must be a list, got 4.'),
    ('a block count a string', lambda o: o['network_g'].update(num_blocks=[1, '2', 1, 1]),
     "network_g.num_blocks[1]: must be a whole number, got '2' (a quoted string)."),
    ('expansion factor a word', lambda o: o['network_g'].update(ffn_expansion_factor='wide'),
     "network_g.ffn_expansion_factor: must be a number, got 'wide'."),
    ('layer norm type a number', lambda o: o['network_g'].update(LayerNorm_type=1),
     'network_g.LayerNorm_type: must be a string, got 1.'),
    ('kd temperature hot', lambda o: o['train']['kd_opt'].update(temperature='hot'),
     "train.kd_opt.temperature: must be a number, got 'hot'."),
    ('sample_channels a quoted number', lambda o: o['train']['et_opt'].update(sample_channels='4'),
     "train.et_opt.sample_channels: must be a whole number, got '4' (a quoted string)."),
    ('amsgrad a quoted string', lambda o: o['train']['optim_g'].update(amsgrad='true'),
     "train.optim_g.amsgrad: must be true or false, got 'true' (a quoted string)."),
    ('milestones a number', lambda o: o['train']['scheduler'].update(milestones=20),
     'train.scheduler.milestones: must be a list, got 20.'),
    ('every loss weight 0',
     lambda o: [o['train'][k].update(loss_weight=0) for k in ('pixel_opt', 'kd_opt', 'nc_opt', 'et_opt')],
     'train: every loss weight is 0 (train.pixel_opt.loss_weight, train.kd_opt.loss_weight, '
     'train.nc_opt.loss_weight, train.et_opt.loss_weight): nothing would train.'),
    ('ema_decay 1', lambda o: o['train'].update(ema_decay=1),
     'train.ema_decay: 1 is out of range; it must be >= 0 and < 1: at 1 the EMA network (which validation uses, '
     'saved as params_ema) keeps its initial weights'),
    ('ema_decay above 1', lambda o: o['train'].update(ema_decay=1.5),
     'train.ema_decay: 1.5 is out of range; it must be >= 0 and < 1'),
    ('negative seed', lambda o: o.update(manual_seed=-1),
     'manual_seed: -1 is out of range; it must be between 0 and 4294967295.'),
    ('seed beyond numpy', lambda o: o.update(manual_seed=2**32),
     'manual_seed: 4294967296 is out of range; it must be between 0 and 4294967295.'),
]


@pytest.mark.parametrize('edit, line', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_one_line_naming_its_key(edit, line):
    text = message(edited(slkd(), edit))
    problems = text.splitlines()[1:]
    assert len(problems) == 1, text
    assert problems[0].startswith(f'  {line}'), text


def test_all_problems_come_in_one_message():
    def many(o):
        o['train'].update(total_iter=0, kd_op=o['train'].pop('kd_opt'))
        o['train']['nc_opt']['loss_weight'] = -1
        o['datasets']['train']['gt_size'] = -1
        o['distill']['encoder_taps'] = 'latent'
        o['name'] = '../x'

    text = message(edited(slkd(), many))
    lines = text.splitlines()
    assert lines[0] == 'the options file has 6 problems (nothing was started):'
    keys = sorted(line.split(':')[0].strip() for line in lines[1:])
    assert keys == ['datasets.train.gt_size', 'distill.encoder_taps', 'name', 'train.kd_op',
                    'train.nc_opt.loss_weight', 'train.total_iter']


def test_the_source_names_the_file():
    with pytest.raises(OptionsError, match=r"^opt/x.yml has 1 problem \(nothing was started\):\n  train.total_iter"):
        check_options(edited(slkd(), lambda o: o['train'].update(total_iter=0)), True, source='opt/x.yml')


def test_a_seed_leaves_room_for_every_rank():
    """BasicSR seeds each rank with manual_seed + rank."""
    opt = edited(slkd(), lambda o: o.update(manual_seed=2**32 - 2, world_size=2, dist=True))
    check_options(opt, True)
    assert options_problems(edited(opt, lambda o: o.update(manual_seed=2**32 - 1)), True) == [
        'manual_seed: 4294967295 is out of range; it must be between 0 and 4294967294.']


@pytest.mark.parametrize('edit', [
    lambda o: [o['train'][k].update(loss_weight=0) for k in ('kd_opt', 'nc_opt', 'et_opt')],
    lambda o: o['train'].update(pixel_opt={'type': 'L1Loss'}, kd_opt={'type': 'ImageKLLoss', 'loss_weight': 0},
                                nc_opt=None, et_opt=None),  # L1Loss's default weight is 1
], ids=['the pixel loss alone', 'a loss without loss_weight'])
def test_one_weighing_loss_is_enough(edit):
    assert options_problems(edited(slkd(), edit), True) == []


def test_the_unquoted_values_pass():
    def edit(o):
        o['network_teacher_b'].update(global_residual=False, dim=16, ffn_expansion_factor=2, num_blocks=(1, 1, 1, 1))
        o['train']['kd_opt'].update(temperature=1)  # an int where a float is annotated
        o['train']['et_opt'].update(sample_channels=None)  # Optional[int]
        o['train'].update(ema_decay=0.999)
        o['manual_seed'] = 0

    assert options_problems(edited(slkd(), edit), True) == []


def test_a_student_preset_is_checked_against_its_parent_arch():
    """ResSL takes Restormer's keywords (its own signature is **overrides), with its preset as the defaults."""
    def student(**args):
        return lambda o: o.update(network_g={'type': 'ResSL', **args})

    assert options_problems(edited(slkd(), student()), True) == []
    assert options_problems(edited(slkd(), student(dim='8', global_residual='no', num_block=[1])), True) == [
        "network_g.dim: must be a whole number, got '8' (a quoted string).",
        "network_g.global_residual: must be true or false, got 'no' (a quoted string).",
        'network_g.num_block: ResSL takes no such argument. Did you mean: network_g.num_blocks, '
        'network_g.num_refinement_blocks?']


@pytest.fixture
def plugin_arch(monkeypatch):
    """An arch of another plugin, registered for the test only: unannotated parameters and one annotation that
    cannot be resolved."""
    from basicsr.utils.registry import ARCH_REGISTRY

    class PluginArch(torch.nn.Module):

        def __init__(self, num_feat=64, res_scale=1, upsampler='pixelshuffle', flags=(1, 2), act=None,
                     block: 'NotDefinedAnywhere' = None, use_bn=False):  # noqa: F821  (an unresolvable hint)
            super().__init__()

    monkeypatch.setitem(ARCH_REGISTRY._obj_map, 'PluginArch', PluginArch)
    return 'PluginArch'


def test_unannotated_arguments_are_checked_against_their_defaults(plugin_arch):
    def arch(**args):
        return lambda o: o.update(network_g={'type': plugin_arch, **args})

    # an int default takes any number (EDSR's res_scale=1 is set to 0.1); a None default or a hint that cannot be
    # resolved takes anything
    fine = arch(num_feat=32, res_scale=0.1, upsampler='nearest', flags=[3], act='relu', block=object(), use_bn=True)
    assert options_problems(edited(slkd(), fine), True) == []
    bad = arch(num_feat='64', res_scale=True, upsampler=2, flags=3, use_bn='false')
    assert options_problems(edited(slkd(), bad), True) == [
        "network_g.num_feat: must be a number, got '64' (a quoted string).",
        'network_g.res_scale: must be a number, got True.',
        'network_g.upsampler: must be a string, got 2.',
        'network_g.flags: must be a list, got 3.',
        "network_g.use_bn: must be true or false, got 'false' (a quoted string)."]


def test_a_bad_value_gets_one_line_per_key():
    """A loss weight, lr or milestone with a problem of its range or type is not reported twice."""
    def edit(o):
        o['train']['kd_opt']['loss_weight'] = 'half'
        o['train']['optim_g']['lr'] = 'fast'
        o['train']['scheduler']['gamma'] = -1

    assert options_problems(edited(slkd(), edit), True) == [
        "train.optim_g.lr: must be a number, got 'fast'.",
        'train.scheduler.gamma: -1 is out of range; it must be > 0.',
        "train.kd_opt.loss_weight: must be a number, got 'half'."]


@pytest.mark.parametrize('name, is_train, warned', [
    ('tiny_debug_run', True, True), ('tiny', True, False), ('tiny_debug_run', False, False)])
def test_a_debug_name_is_warned_about_in_training(name, is_train, warned):
    opt = edited(slkd(), lambda o: o.update(name=name))
    expected = [f"name: '{name}' contains 'debug', so BasicSR trains in debug mode: logger.print_freq becomes 1, "
                'logger.save_checkpoint_freq 8, val.val_freq 8, whatever the options file says, and no tensorboard '
                "or wandb logger is started. To train with the options file's settings, rename the experiment (a "
                "name without 'debug')."]
    assert options_warnings(opt, is_train) == (expected if warned else [])


def test_options_error_is_a_value_error():
    assert issubclass(OptionsError, ValueError)


@pytest.mark.parametrize('params', [{'timeout_minutes': 60}, {'timeout_minutes': 0.5}, {'timeout_minutes': None},
                                    {'backend': 'nccl', 'port': 29500, 'timeout_minutes': 90}])
def test_dist_params_with_a_positive_timeout_pass(params):
    check_options(edited(slkd(), lambda o: o.update(dist_params=params)), True)
    check_options(edited(sr_test(), lambda o: o.update(dist_params=params)), False)
    assert dist_params_problems(params) == []


# ---- plugins and BasicSR's own keys ------------------------------------------------------------------------------

@pytest.fixture
def plugin_model(monkeypatch):
    """A model of another plugin, registered for the test only."""

    class PluginGANModel(SRModel):
        pass

    monkeypatch.setitem(MODEL_REGISTRY._obj_map, 'PluginGANModel', PluginGANModel)
    return 'PluginGANModel'


def test_keys_another_plugins_model_reads_stay_allowed(plugin_model):
    def plugin(o):
        o['model_type'] = plugin_model
        o['train'].update(gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1}, net_d_iters=1,
                          my_plugin_warmup=5, optim_d={'type': 'Adam', 'lr': 1e-4})
        o['my_plugin_section'] = {'anything': 1}
        o['path']['cache_folder'] = 'cache'
        for key in ('kd_opt', 'nc_opt', 'et_opt'):
            del o['train'][key]
        del o['distill']

    check_options(edited(slkd(), plugin), True)


def test_near_misses_of_known_keys_are_flagged_for_plugins_too(plugin_model):
    def plugin(o):
        o['model_type'] = plugin_model
        o['train']['kd_op'] = o['train'].pop('kd_opt')
        o['train']['pixel_op'] = o['train']['pixel_opt']
        o['distil'] = o.pop('distill')

    problems = options_problems(edited(slkd(), plugin), True)
    assert [p.split(':')[0] for p in problems] == ['distil', 'train.kd_op', 'train.pixel_op'], problems


def test_a_plugin_loss_is_fine_where_nothing_reads_the_whole_train_section(plugin_model):
    assert options_problems(edited(slkd(), lambda o: o.update(model_type=plugin_model)), True) == [
        'distill: only SLKDModel reads it; with model_type PluginGANModel it would be ignored.']


def test_slkd_keys_with_srmodel_are_said_to_be_ignored():
    opt = edited(slkd(), lambda o: o.update(model_type='SRModel'))
    problems = options_problems(opt, True)
    assert 'train.kd_opt: only SLKDModel reads it; with model_type SRModel it would be ignored.' in problems
    assert 'distill: only SLKDModel reads it; with model_type SRModel it would be ignored.' in problems


def test_keys_parse_options_adds_are_not_flagged(monkeypatch, tmp_path):
    opt = slkd()
    opt['name'] = 'tiny'
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '-opt', write_options(opt, str(tmp_path / 'o.yml')),
                                      '--auto_resume'])
    parsed, _ = parse_options(str(tmp_path), is_train=True)
    parsed['root_path'] = str(tmp_path)
    assert {'experiments_root', 'models', 'training_states', 'log', 'visualization'} <= set(parsed['path'])
    check_options(parsed, True)


def test_an_unknown_type_is_left_to_compat():
    opt = edited(slkd(), lambda o: o['network_g'].update(type='Restormr', dimm=3))
    assert options_problems(opt, True) == []
    with pytest.raises(UnknownTypeError, match='Did you mean: Restormer'):
        check_option_types(opt)


def test_suggest_ignores_case_and_keeps_compat_style():
    assert suggest('KD_OP', ['kd_opt', 'nc_opt', 'et_opt']) == ['kd_opt']
    assert suggest('restormer', ['Restormer', 'NAFNet']) == ['Restormer']
    assert suggest('zzz', ['kd_opt']) == []


def test_a_key_without_close_match_lists_the_known_ones():
    text = message(edited(slkd(), lambda o: o['distill'].update(qqq=1)))
    assert 'distill.qqq: unknown key. Known keys: anneal_iters, check_teachers, decoder_taps, encoder_taps, every, ' \
           'log_complexity, log_grad_shares, min_teacher_b_psnr, probe_channels, probe_size, scm_resize_mode, ' \
           'teacher_amp, teacher_batch, teacher_crop.' in text


def test_synthetic_dataset_options_and_degradation_ranges():
    def synthetic(o):
        o['datasets']['train'] = {
            'name': 'rain', 'type': 'SyntheticDegradationDataset', 'source': 'skimage', 'gt_size': 32,
            'batch_size_per_gpu': 2, 'num_worker_per_gpu': 0, 'degradations': [{'type': 'rain', 'density': 5.0}],
            'use_hflp': True}

    problems = options_problems(edited(slkd(), synthetic), True)
    assert problems == [
        'datasets.train.use_hflp: unknown key. Did you mean: datasets.train.use_hflip?',
        'datasets.train.degradations[0].density (rain): 5.0 is out of range; density must be between 0 and 1.']


# ---- slkd-test ---------------------------------------------------------------------------------------------------

def test_slkd_test_without_a_checkpoint_is_refused():
    text = message(edited(sr_test(), lambda o: o['path'].update(pretrain_network_g=None)), is_train=False)
    assert 'path.pretrain_network_g: not set: the test would run a randomly initialised network.' in text
    assert 'path.allow_random_init: true' in text


def test_slkd_test_may_test_an_untrained_network_on_purpose():
    check_options(edited(sr_test(), lambda o: o['path'].update(pretrain_network_g=None, allow_random_init=True)),
                  False)


def test_slkd_test_needs_test_datasets_and_ignores_training_sections():
    opt = edited(sr_test(), lambda o: o.update(train={'total_iter': 0}, datasets={'train': o['datasets']['test_1']}))
    assert options_problems(opt, False) == [
        'datasets.train: not a dataset phase here: slkd-test reads test_1, test_2, ... (and val*).']


def test_slkd_test_needs_val_save_img():
    assert options_problems(edited(sr_test(), lambda o: o.pop('val')), False) == [
        'val: missing; this section is required.']


# ---- iterations per epoch ----------------------------------------------------------------------------------------

def test_a_batch_larger_than_the_dataset_is_refused():
    opt = edited(slkd(), lambda o: o['datasets']['train'].update(batch_size_per_gpu=8))
    with pytest.raises(OptionsError) as err:
        check_iterations_per_epoch(opt, 4)
    assert str(err.value).splitlines()[1].startswith(
        '  datasets.train.batch_size_per_gpu: 8 is larger than the 4 training samples each of the 1 process(es) gets '
        'per epoch (4 images x dataset_enlarge_ratio 1), so not one iteration would run.')
    check_iterations_per_epoch(opt, 8)


def test_every_rank_needs_a_full_batch():
    opt = edited(slkd(), lambda o: o.update(dist=True, world_size=2))
    opt['datasets']['train']['batch_size_per_gpu'] = 3
    with pytest.raises(OptionsError, match='the 2 training samples each of the 2 process'):
        check_iterations_per_epoch(opt, 4)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 2
    check_iterations_per_epoch(opt, 4)


class Items(torch.utils.data.Dataset):

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return index


@pytest.mark.parametrize('n, batch, ratio, world, num_gpu, dist', [
    (4, 8, 1, 1, 0, False), (8, 2, 1, 1, 0, False), (5, 2, 1, 1, 0, False), (4, 3, 1, 2, 0, True),
    (5, 2, 3, 2, 0, True), (4, 2, 1, 1, 2, False), (7, 3, 2, 1, 0, False), (1, 1, 1, 4, 0, True)])
def test_iterations_per_epoch_is_what_basicsrs_loader_gives(n, batch, ratio, world, num_gpu, dist):
    opt = {'world_size': world, 'num_gpu': num_gpu, 'dist': dist,
           'datasets': {'train': {'phase': 'train', 'batch_size_per_gpu': batch, 'num_worker_per_gpu': 0,
                                  'dataset_enlarge_ratio': ratio}}}
    sampler = EnlargedSampler(Items(n), world, 0, ratio)
    loader = build_dataloader(Items(n), opt['datasets']['train'], num_gpu=num_gpu, dist=dist, sampler=sampler)
    assert iterations_per_epoch(opt, n) == len(loader)


# ---- reading the file --------------------------------------------------------------------------------------------

def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / 'bad.yml'
    path.write_text('name: x\ntrain:\n  total_iter: 10\n   lr: 2\n')
    with pytest.raises(OptionsError, match=r"bad.yml, line 4, column 6: not valid YAML: mapping values are not "
                                           r"allowed"):
        read_options_file(str(path))


def test_a_file_that_is_not_a_mapping():
    assert options_problems(['a', 'b'], True) == [
        "(top level): the options file must be a mapping of options, got ['a', 'b']."]
