"""Bad options stop slkd-train / slkd-test with one message before anything is made; a live experiment is locked."""
import copy
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import (REPO_ROOT, TINY_RESTORMER, in_process, make_pairs, paired_dataset, run_entry, save_checkpoint,
                     slkd_options, sr_options, write_options)
from slkd_basicsr.checks import run


def _refused(proc: subprocess.CompletedProcess, tmp_path, *expected: str) -> str:
    """The run failed with exit status 2, one message (no traceback) holding ``expected``, and made nothing."""
    err = proc.stderr
    assert proc.returncode == 2, proc.stdout[-3000:] + err[-3000:]
    assert 'Traceback' not in err, err[-3000:]
    for text in expected:
        assert text in err, err[-3000:]
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()
    assert 'Start training' not in proc.stdout + err
    return err


def _set(opt, dotted, value):
    *keys, last = dotted.split('.')
    for key in keys:
        opt = opt[key]
    if value is KeyError:
        del opt[last]
    else:
        opt[last] = value


BAD_TRAIN = {
    'batch larger than the dataset': (
        [('datasets.train.batch_size_per_gpu', 9)],
        ['datasets.train.batch_size_per_gpu: 9 is larger than the 8 training samples', 'not one iteration']),
    'total_iter 0': ([('train.total_iter', 0)], ['train.total_iter: 0 is out of range; it must be >= 1.']),
    'typo in a key': ([('train.pixel_opt_', {'type': 'L1Loss'})],
                      ['train.pixel_opt_: unknown key. Did you mean: train.pixel_opt?']),
    'negative loss weight': ([('train.pixel_opt.loss_weight', -0.5)],
                             ['train.pixel_opt.loss_weight: -0.5 is out of range; it must be >= 0.']),
    'name with a path separator': ([('name', '../escaped')],
                                   ["name: '../escaped' names a folder outside experiments/"]),
    'no network_g': ([('network_g', KeyError)], ['network_g: missing; this section is required.']),
    'no datasets (BasicSR parser fails)': ([('datasets', KeyError)], ['datasets: missing; this section is required.']),
    'metric that cannot run': (
        [('val.metrics.brisque', {'type': 'calculate_brisque', 'crop_border': 0}),
         ('val.metrics.piqe', {'type': 'calculate_piqe', 'crop_border': 0, 'convert_to': 'rgb'})],
        ['2 problems', 'val.metrics.brisque: calculate_brisque cannot run on the first image of datasets.val, 40 x 40 '
         'pixels (FileNotFoundError', 'svm_model_path',
         'val.metrics.piqe: calculate_piqe cannot run on the first image of datasets.val, 40 x 40 pixels (ValueError: '
         "convert_to must be 'gray' or 'y', got 'rgb')"]),
    # issue 26: types of arch arguments, a training that trains nothing, EMA, seeds
    'quoted bool and number in the arch': (
        [('network_g.global_residual', 'false'), ('network_g.dim', '8')],
        ['2 problems', "network_g.global_residual: must be true or false, got 'false' (a quoted string).",
         "network_g.dim: must be a whole number, got '8' (a quoted string)."]),
    'every loss weight 0': ([('train.pixel_opt.loss_weight', 0)],
                            ['train: every loss weight is 0 (train.pixel_opt.loss_weight): nothing would train.']),
    'ema_decay 1': ([('train.ema_decay', 1.0)], ['train.ema_decay: 1.0 is out of range; it must be >= 0 and < 1']),
    'negative seed (BasicSR parser fails)': (
        [('manual_seed', -1)], ['manual_seed: -1 is out of range; it must be between 0 and 4294967295.']),
    # issue 26: metrics tried at the size of the validation images (40 px here), not on a generated 192 px image
    'metrics that cannot score the validation images': (
        [('val.metrics.psnr.crop_border', 20), ('val.metrics.niqe', {'type': 'calculate_niqe', 'crop_border': 0})],
        ['2 problems',
         'val.metrics.psnr: calculate_psnr cannot run on the first image of datasets.val, 40 x 40 pixels (its value '
         'is NaN; crop_border 20 crops every pixel); fix its options',
         'val.metrics.niqe: calculate_niqe cannot run on the first image of datasets.val, 40 x 40 pixels '
         '(RuntimeError: ']),
}


@pytest.mark.parametrize('case', list(BAD_TRAIN), ids=lambda c: c.replace(' ', '_'))
def test_bad_train_options_stop_before_anything_is_made(case, image_pairs, tmp_path):
    edits, expected = BAD_TRAIN[case]
    opt = sr_options(image_pairs)
    for dotted, value in edits:
        _set(opt, dotted, value)
    path = write_options(opt, str(tmp_path / 'bad.yml'))
    err = _refused(run_entry('slkd_basicsr.tools.train', ['-opt', path], str(tmp_path)), tmp_path, *expected)
    assert f'{path} has ' in err and '(nothing was started)' in err
    assert not os.path.exists(tmp_path.parent / 'escaped')


def test_every_problem_is_listed_in_one_message(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    opt['train'].update(total_iter=0, kd_op={'type': 'ImageKLLoss'})
    opt['train']['pixel_opt']['loss_weight'] = -1
    path = write_options(opt, str(tmp_path / 'bad.yml'))
    err = _refused(run_entry('slkd_basicsr.tools.train', ['-opt', path], str(tmp_path)), tmp_path, '3 problems')
    lines = [line.strip() for line in err.splitlines() if line.startswith('  ')]
    assert [line.split(':')[0] for line in lines] == ['train.kd_op', 'train.total_iter', 'train.pixel_opt.loss_weight']


def test_yaml_syntax_error_names_the_line(image_pairs, tmp_path):
    path = tmp_path / 'bad.yml'
    path.write_text('name: [tiny\nmodel_type: SRModel\n')
    _refused(run_entry('slkd_basicsr.tools.train', ['-opt', str(path)], str(tmp_path)), tmp_path,
             f'{path}, line 2, column 11: not valid YAML')


def _wait_for(predicate, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_live_experiment_cannot_be_taken_over(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    opt['train']['total_iter'] = 10 ** 6  # runs until killed
    opt['logger']['save_checkpoint_freq'] = 5
    path = write_options(opt, str(tmp_path / 'long.yml'))
    exp = tmp_path / 'experiments' / opt['name']
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    first = subprocess.Popen([sys.executable, '-m', 'slkd_basicsr.tools.train', '-opt', path], cwd=str(tmp_path),
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: (exp / 'training_states' / '5.state').exists()), 'the first run did not start'
        second = run_entry('slkd_basicsr.tools.train', ['-opt', path], str(tmp_path))
        assert second.returncode == 2 and 'Traceback' not in second.stderr
        assert f"The experiment folder '{exp}' is in use by a running training (pid {first.pid} " in second.stderr
        assert sorted(p.name for p in (tmp_path / 'experiments').iterdir()) == [opt['name']]  # nothing archived
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the killed run's lock is stale: a resumed run takes it over, then releases it when it ends
    resumed = run_entry('slkd_basicsr.tools.train',
                        ['-opt', path, '--auto_resume', '--force_yml', 'train:total_iter=12'], str(tmp_path),
                        env={'OMP_NUM_THREADS': '1'})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert 'took over the stale lock' in resumed.stdout and f'pid {first.pid}' in resumed.stdout
    assert not (exp / '.slkd_lock').exists()
    # a new run (not resumed) archives the finished one as BasicSR does
    fresh = run_entry('slkd_basicsr.tools.train', ['-opt', path, '--force_yml', 'train:total_iter=2'], str(tmp_path),
                      env={'OMP_NUM_THREADS': '1'})
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / 'experiments').iterdir())
    assert len(names) == 2 and names[0] == opt['name'] and names[1].startswith(f"{opt['name']}_archived_")


def _test_options(image_pairs, checkpoint):
    opt = sr_options(image_pairs)
    return {
        'name': 'tiny_test',
        'model_type': 'SRModel',
        'scale': 1,
        'num_gpu': 0,
        'datasets': {'test_1': {**opt['datasets']['val'], 'name': 'generated_test'}},
        'network_g': copy.deepcopy(TINY_RESTORMER),
        'path': {'pretrain_network_g': checkpoint, 'strict_load_g': True},
        'val': {'save_img': True, 'metrics': opt['val']['metrics']},  # no val.suffix
    }


def test_slkd_test_without_a_checkpoint_is_refused(image_pairs, tmp_path):
    path = write_options(_test_options(image_pairs, None), str(tmp_path / 'test.yml'))
    _refused(run_entry('slkd_basicsr.tools.test', ['-opt', path], str(tmp_path)), tmp_path,
             'path.pretrain_network_g: not set: the test would run a randomly initialised network',
             'path.allow_random_init: true')


def test_slkd_test_saves_images_without_val_suffix(image_pairs, tmp_path):
    from basicsr.archs import build_network

    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_network(copy.deepcopy(TINY_RESTORMER)), str(tmp_path / 'net.pth'))
    path = write_options(_test_options(image_pairs, checkpoint), str(tmp_path / 'test.yml'))
    proc = run_entry('slkd_basicsr.tools.test', ['-opt', path], str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    saved = sorted(p.name for p in (tmp_path / 'results' / 'tiny_test' / 'visualization' / 'generated_test').iterdir())
    assert saved == ['000_tiny_test.png', '001_tiny_test.png']


# ---- inputs never overwritten, links never followed, nothing outside experiments/ and results/ (issue 26) ----------

def test_a_second_slkd_test_with_the_same_name_is_refused_and_archives_nothing(image_pairs, tmp_path):
    from slkd_basicsr.checks import lock as experiment_lock

    results = tmp_path / 'results' / 'tiny_test'
    (results / 'visualization').mkdir(parents=True)
    (results / 'visualization' / 'first.png').write_bytes(b'the first test, still running')
    path = write_options(_test_options(image_pairs, str(tmp_path / 'net.pth')), str(tmp_path / 'test.yml'))
    with experiment_lock.lock_experiment(str(results), experiment_lock.TEST):  # the first slkd-test, running
        proc = run_entry('slkd_basicsr.tools.test', ['-opt', path], str(tmp_path))
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr and proc.stderr.count('\n') == 1, proc.stderr
    assert f"The results folder '{results}' is in use by a running slkd-test (pid {os.getpid()} " in proc.stderr
    assert 'give this test another name in the options file' in proc.stderr
    assert os.listdir(tmp_path / 'results') == ['tiny_test']
    assert sorted(os.listdir(results / 'visualization')) == ['first.png']


@pytest.mark.parametrize('edit, expected', [
    (lambda datasets: datasets['test_1'].update(name='../../../x'),
     "datasets.test_1.name: '../../../x' names a folder outside results/<name>/visualization/"),
    (lambda datasets: datasets.update(test_2=copy.deepcopy(datasets['test_1'])),
     "datasets.test_2.name: 'generated_test' is also the name of datasets.test_1: both sets would save their "
     'images into results/<name>/visualization/generated_test/, one overwriting the other.'),
], ids=['name leaving results', 'two sets of one name'])
def test_test_set_names_that_would_misplace_images_are_refused(image_pairs, tmp_path, edit, expected):
    opt = _test_options(image_pairs, str(tmp_path / 'net.pth'))
    edit(opt['datasets'])
    path = write_options(opt, str(tmp_path / 'test.yml'))
    _refused(run_entry('slkd_basicsr.tools.test', ['-opt', path], str(tmp_path)), tmp_path, expected)
    assert not (tmp_path / 'x').exists()


def test_a_symlink_planted_as_the_lock_file_is_refused(image_pairs, tmp_path):
    opt = sr_options(image_pairs)
    exp = tmp_path / 'experiments' / opt['name']
    exp.mkdir(parents=True)
    target = tmp_path / 'precious.txt'
    target.write_text('keep me\n')
    os.symlink(target, exp / '.slkd_lock')
    path = write_options(opt, str(tmp_path / 'run.yml'))
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', path], str(tmp_path))
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr and proc.stderr.count('\n') == 1, proc.stderr
    assert f"slkd-train: The lock file '{exp / '.slkd_lock'}' is a symbolic link, which this project never " \
        'makes; nothing was written through it. Remove it and start the run again.' in proc.stderr
    assert target.read_text() == 'keep me\n' and os.listdir(tmp_path / 'experiments') == [opt['name']]


@pytest.mark.parametrize('debug', [False, True], ids=['name only', 'with --debug'])
def test_a_debug_name_is_warned_about_unless_debug_mode_is_asked_for(image_pairs, tmp_path, capsys, debug):
    """BasicSR switches to debug mode for any name containing 'debug'; --debug asks for it (and adds debug_)."""
    from types import SimpleNamespace

    from slkd_basicsr.pipeline.parse import checked_parse_options

    opt = in_process(sr_options(image_pairs))
    opt['name'] = 'tiny_debug'
    opt['path']['experiments_root'] = str(tmp_path / 'experiments' / 'tiny_debug')
    parse = checked_parse_options(lambda root_path, is_train: (opt, SimpleNamespace(opt='tiny.yml', debug=debug)))
    parse(str(tmp_path), True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('Warning: ')]
    assert warnings == ([] if debug else [
        "Warning: name: 'tiny_debug' contains 'debug', so BasicSR trains in debug mode: logger.print_freq becomes 1, "
        'logger.save_checkpoint_freq 8, val.val_freq 8, whatever the options file says, and no tensorboard or wandb '
        "logger is started. To train with the options file's settings, rename the experiment (a name without "
        "'debug')."])


def test_a_teacher_checkpoint_that_is_empty_is_one_line(image_pairs, teachers, tmp_path):
    opt = slkd_options(image_pairs, teachers)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    opt['path']['pretrain_network_teacher_a'] = str(empty)
    opt['train']['total_iter'] = 2
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, str(tmp_path / 'run.yml'))], str(tmp_path))
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith('slkd-train: ') and str(empty) in proc.stderr, proc.stderr


# ---- taps, their pairing and the networks' channels, checked before the experiment folder is made (issue 26) -------

TINY_NAFNET = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1, 1, 1], 'middle_blk_num': 1,
               'dec_blk_nums': [1, 1, 1, 1]}
TINY_UFORMER = {'type': 'Uformer', 'img_size': 64, 'embed_dim': 8, 'win_size': 4, 'depths': [1] * 9,
                'modulator': True}


def _uformer_student_tapping_a_tuple(opt):
    opt.update(network_g=dict(TINY_UFORMER))
    del opt['train']['et_opt']
    opt['distill']['encoder_taps'] = [['encoderlayer_0.blocks.0.attn.qkv', 'encoder_level1']]


BAD_TAPS = {
    'a tap that does not exist': (
        lambda opt: opt['distill'].update(encoder_taps=['encoder_level1', ['encoder_levle2', 'encoder_level2']]),
        "slkd-train: student tap 'encoder_levle2' does not exist in Restormer. Closest existing modules: "
        'encoder_level2, '),
    'default taps that do not pair': (
        lambda opt: opt.update(network_g=dict(TINY_NAFNET)),
        'slkd-train: distill.decoder_taps is not set and the default decoder taps of student NAFNet and teacher B '
        "Restormer differ in number (['decoders.0', 'decoders.1', 'decoders.2', 'decoders.3'] vs ['decoder_level3', "
        "'decoder_level2', 'decoder_level1']); list [student, teacher] pairs in distill.decoder_taps."),
    'student and teacher channels differ': (
        lambda opt: opt['network_g'].update(out_channels=1, global_residual=False),
        'slkd-train: teacher output (1, 3, 32, 32) and student output (1, 1, 32, 32) differ; teacher and student '
        'must have the same input and output channels.'),
    'a tap that returns no tensor': (
        _uformer_student_tapping_a_tuple,
        "slkd-train: tap 'encoderlayer_0.blocks.0.attn.qkv' (LinearProjection) returns tuple, not a tensor; tap a "
        'module that returns a B x C x H x W feature map.'),
    'a teacher_crop the teachers would pad': (
        lambda opt: opt['distill'].update(teacher_crop=20),
        'slkd-train: distill.teacher_crop: Restormer pads a 20-pixel crop to its size multiple (its teacher A '
        "encoder tap encoder_level1 is (24, 24), not the crop's (20, 20)); use a crop side"),
}


@pytest.mark.parametrize('case', list(BAD_TAPS), ids=lambda c: c.replace(' ', '_'))
def test_taps_that_do_not_fit_stop_before_anything_is_made(case, image_pairs, teachers, tmp_path):
    edit, expected = BAD_TAPS[case]
    opt = slkd_options(image_pairs, teachers)
    edit(opt)
    proc = run_entry('slkd_basicsr.tools.train', ['-opt', write_options(opt, str(tmp_path / 'run.yml'))], str(tmp_path))
    err = _refused(proc, tmp_path, expected)
    assert err.startswith(expected) and err.count('\n') == 1, err


def _scored_set(folders, kind='PairedImageDataset'):
    """A validation or test set of ``folders`` as parse_options leaves it (phase and scale set)."""
    dataset = {**paired_dataset(folders, 'val'), 'type': kind, 'phase': 'val', 'scale': 1}
    if kind == 'SingleImageDataset':
        del dataset['dataroot_gt']
    return dataset


def test_metrics_are_tried_at_the_size_of_the_first_image_of_each_scored_set(image_pairs, tmp_path):
    """NIQE needs more than 40 px (its 96 px blocks): refused for the 40 px sets, fine at 192 px."""
    niqe = {'niqe': {'type': 'calculate_niqe', 'crop_border': 0}}
    large = make_pairs(str(tmp_path / 'large'), 1, 192, seed=2)
    datasets = {'train': paired_dataset(image_pairs['train'], 'train'), 'val': _scored_set(image_pairs['val'])}
    opt = {'scale': 1, 'val': {'metrics': niqe}, 'datasets': datasets}
    problem = 'val.metrics.niqe: calculate_niqe cannot run on the first image of {}, 40 x 40 pixels (RuntimeError: '
    found = run.metric_problems(opt, is_train=True)
    assert len(found) == 1 and found[0].startswith(problem.format('datasets.val'))
    opt['datasets']['val'] = _scored_set(large)
    assert run.metric_problems(opt, is_train=True) == []
    del opt['datasets']['val']  # no validation set: the generated 192 px image
    assert run.metric_problems(opt, is_train=True) == []
    # slkd-test scores every set; one without GT is scored at its LQ size times the scale
    opt['datasets'] = {'test_1': _scored_set(large), 'test_2': _scored_set(image_pairs['val'], 'SingleImageDataset')}
    found = run.metric_problems(opt, is_train=False)
    assert len(found) == 1 and found[0].startswith(problem.format('datasets.test_2'))
