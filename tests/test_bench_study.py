"""bench/study.py: the arms it compares, and the record a tiny study writes."""
import json

import pytest

from helpers import load_bench_script


@pytest.fixture(scope='module')
def study():
    return load_bench_script('study')


def test_arms_differ_only_in_distillation_losses(study):
    paths = {'teacher_a': 'a.pth', 'teacher_b': 'b.pth'}
    train = {arm: study.student_options('denoise', arm, 3, 10, paths)['train'] for arm in study.ARMS}
    losses = {arm: {key: opt['type'] for key, opt in train[arm].items() if key.endswith('_opt')} for arm in train}
    assert losses['student'] == {'pixel_opt': 'L1Loss'}  # nothing else: exactly an SRModel run
    assert losses['output_kd'] == {'pixel_opt': 'L1Loss', 'kd_opt': 'L1Loss'}
    assert losses['slkd'] == {'pixel_opt': 'L1Loss', 'kd_opt': 'ImageKLLoss', 'nc_opt': 'BRISQUEFeatureLoss',
                              'et_opt': 'PIQEFeatureLoss'}
    assert set(losses['no_drl']) == {'pixel_opt', 'kd_opt', 'et_opt'}
    assert set(losses['no_irl']) == {'pixel_opt', 'kd_opt', 'nc_opt'}
    assert losses['no_nc'] == {**losses['slkd'], 'nc_opt': 'FeatureL1Loss'}
    assert losses['no_et'] == {**losses['slkd'], 'et_opt': 'FeatureL1Loss'}
    assert len({json.dumps(losses[arm], sort_keys=True) for arm in losses}) == len(study.ARMS)  # all distinct
    for arm, opt in train.items():  # the same schedule and seed everywhere
        assert {key: opt[key] for key in ('total_iter', 'optim_g', 'scheduler')} == \
            {key: train['student'][key] for key in ('total_iter', 'optim_g', 'scheduler')}


def test_tiny_study_writes_record_plot_and_small_logs(study, tmp_path, capsys):
    out = tmp_path / 'out'
    study.main(['--tasks', 'derain', '--arms', 'output_kd', '--seeds', '0', '--iters', '2', '--workdir',
                str(tmp_path / 'work'), '--out', str(out)])
    record = json.loads((out / 'study.json').read_text())
    assert {'command', 'profile', 'setup', 'tasks', 'wall_s', 'machine'} <= set(record)
    task = record['tasks']['derain']
    assert 'shipped' in task['teachers']['teacher_a']['source'] and 'teacher_b' not in task['teachers']
    assert task['references']['teacher A']['psnr'] > 25 > task['references']['degraded input']['psnr']
    arm = task['arms']['output_kd']
    assert arm['losses'] == {'kd_opt': {'type': 'L1Loss', 'loss_weight': 0.5, 'reduction': 'mean'}}
    [run] = arm['runs']
    assert run['seed'] == 0 and run['iters'] == 2 and run['train_s'] > 0
    assert arm['psnr'] == {'mean': run['psnr'], 'std': None}
    log = (out / run['log']).read_text()
    assert 'l_kd' in log and 'Validation' in log and 'Version Information' not in log and len(log) < 4000
    assert (out / 'study.png').stat().st_size > 0
    assert '| output KD (L1 to teacher A) |' in capsys.readouterr().out
