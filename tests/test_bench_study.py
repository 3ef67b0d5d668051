"""bench/study.py: arms that differ only in their losses, paired statistics, and a resumable tiny study."""
import json

import pytest

from helpers import load_bench_script

PROFILE = {'iters': 4, 'val_every': 2, 'seeds': [0], 'ablation_seeds': [], 'tasks': ['derain'],
           'ablation_tasks': []}


@pytest.fixture(scope='module')
def study():
    return load_bench_script('study')


def test_arms_differ_only_in_distillation_losses_and_schedule(study):
    train = {arm: study.student_options('denoise', arm, 3, PROFILE)['train'] for arm in study.ARMS}
    losses = {arm: {key: opt['type'] for key, opt in train[arm].items() if key.endswith('_opt')} for arm in train}
    assert losses['student'] == {'pixel_opt': 'L1Loss'}  # nothing else: exactly an SRModel run
    assert losses['output_kd'] == {'pixel_opt': 'L1Loss', 'kd_opt': 'L1Loss'}
    assert losses['slkd'] == {'pixel_opt': 'L1Loss', 'kd_opt': 'ImageKLLoss', 'nc_opt': 'BRISQUEFeatureLoss',
                              'et_opt': 'PIQEFeatureLoss'}
    assert set(losses['no_drl']) == {'pixel_opt', 'kd_opt', 'et_opt'}
    assert set(losses['no_irl']) == {'pixel_opt', 'kd_opt', 'nc_opt'}
    assert losses['no_nc'] == {**losses['slkd'], 'nc_opt': 'FeatureL1Loss'}
    assert losses['no_et'] == {**losses['slkd'], 'et_opt': 'FeatureL1Loss'}
    assert losses['no_kl'] == {'pixel_opt': 'L1Loss', 'nc_opt': 'BRISQUEFeatureLoss', 'et_opt': 'PIQEFeatureLoss'}
    assert losses['slkd_light'] == losses['slkd']
    weights = {arm: {key: opt['loss_weight'] for key, opt in train[arm].items() if key.endswith('_opt')}
               for arm in ('slkd', 'slkd_light')}
    assert weights['slkd'] == {'pixel_opt': 1.0, 'kd_opt': 0.5, 'nc_opt': 0.1, 'et_opt': 0.1}  # the papers'
    assert weights['slkd_light'] == {**weights['slkd'], 'nc_opt': 0.02, 'et_opt': 0.02}  # the recipe's default
    assert {key: train['slkd_light'][key] for key in study.recipe.SLKD_LOSSES} == study.recipe.SLKD_LOSSES
    options = {arm: study.student_options('denoise', arm, 3, PROFILE) for arm in study.ARMS}
    assert losses['slkd_anneal'] == losses['slkd']
    assert options['slkd_anneal']['distill']['anneal_iters'] == PROFILE['iters']
    assert all('anneal_iters' not in options[arm]['distill'] for arm in study.ARMS if arm != 'slkd_anneal')
    identities = {json.dumps([train[arm], options[arm]['distill']], sort_keys=True) for arm in losses}
    assert len(identities) == len(study.ARMS)  # all distinct
    assert options['tb1']['distill']['teacher_batch'] == 1 and train['tb1'] == train['slkd_light']
    assert all('teacher_batch' not in options[arm]['distill'] for arm in study.ARMS if arm not in study.COST_ARMS)
    for arm, opt in options.items():  # the same schedule, data and seed everywhere: the arms are paired
        assert opt['manual_seed'] == 3 and opt['datasets'] == options['student']['datasets']
        assert {key: opt['train'][key] for key in ('total_iter', 'optim_g', 'scheduler')} == \
            {key: train['student'][key] for key in ('total_iter', 'optim_g', 'scheduler')}
    assert options['slkd']['path']['pretrain_network_teacher_a'].endswith('demo_teacher_a_denoise.pth')


def test_digest_follows_the_options(study):
    opt = study.student_options('derain', 'slkd', 0, PROFILE)
    assert study.digest(opt) == study.digest(study.student_options('derain', 'slkd', 0, PROFILE))
    opt['train']['kd_opt']['loss_weight'] = 0.4
    assert study.digest(opt) != study.digest(study.student_options('derain', 'slkd', 0, PROFILE))


def _record(psnr):
    return {'curve': {'2': {'psnr': psnr - 1, 'ssim': 0.5}, '4': {'psnr': psnr, 'ssim': 0.5}},
            'grad_shares': {}, 'seed': 0, 'train_s': 1.0}


def test_paired_differences_and_their_interval(study):
    records = {}
    for seed, (alone, slkd) in enumerate([(25.0, 25.3), (26.0, 26.1), (24.0, 24.5)]):
        records['derain', 'student', seed] = _record(alone)
        records['derain', 'slkd', seed] = _record(slkd)
    records['derain', 'slkd', 3] = _record(30.0)  # no student run of seed 3: not paired
    entry = study.paired(records, 'derain', 'slkd', 'student', '4')
    assert entry['n_seeds'] == 3 and entry['per_seed_db'] == [0.3, 0.1, 0.5]
    assert entry['mean_db'] == pytest.approx(0.3)
    low, high = entry['ci95']  # t(0.975, 2) = 4.303, sd 0.2: 0.3 +- 0.497
    assert low == pytest.approx(-0.197, abs=1e-3) and high == pytest.approx(0.797, abs=1e-3)
    assert study.t_interval([0.2]) is None


def test_summary_compares_the_default_weights_with_the_papers(study):
    records = {}
    for seed, (alone, paper, default) in enumerate([(25.0, 24.8, 25.1), (26.0, 25.7, 26.0)]):
        for arm, psnr in (('student', alone), ('slkd', paper), ('slkd_light', default)):
            records['denoise', arm, seed] = _record(psnr)
    summary = study.summarise(records, PROFILE, {'denoise': {}})
    entry = summary['default_vs_paper']['denoise']['slkd_light']
    assert entry['vs'] == 'slkd' and entry['per_seed_db'] == [0.3, 0.3] and entry['n_seeds'] == 2
    assert summary['paired']['denoise']['slkd_light']['per_seed_db'] == [0.1, 0.0]
    assert 'denoise: SLKD, L_NC, L_ET at 0.02, teachers on the whole batch - SLKD, paper weights: +0.30 dB' in \
        study.format_comparisons(summary)


def test_log_parsing_reads_shares_and_teacher_checks(study):
    log = ('2026-12-03 08:18:05,237 INFO: [x][epoch:  0, iter:  50] l_pix: 4.9e-02 share_l_kd: 6.0e-01 '
           'share_l_et: 2.0e-01\n2026-12-03 08:18:15,213 INFO: [x][epoch:  0, iter: 100] share_l_kd: 2.0e-01\n'
           "2026-12-03 08:17:52,150 INFO: Teacher check: teacher A (degraded -> clean) PSNR 27.21 dB vs the "
           "degraded input's own 20.84 dB, on 4 images of v.\n"
           '2026-12-03 08:17:52,152 INFO: Teacher check: teacher B (clean -> clean) PSNR 38.49 dB, on 4 images.\n')
    parsed = study.parse_log(log)
    assert parsed['grad_shares'] == {'l_kd': pytest.approx(0.4), 'l_et': pytest.approx(0.2)}
    assert parsed['teacher_checks'] == {'teacher A': 27.21, 'teacher B': 38.49}


def test_tiny_study_writes_records_and_resumes(study, tmp_path, capsys):
    out = tmp_path / 'out'
    args = ['--tasks', 'derain', '--arms', 'student', 'slkd', '--seeds', '0', '--iters', '4', '--val-every', '2',
            '--jobs', '1', '--workdir', str(tmp_path / 'work'), '--out', str(out)]
    result = study.main(args)
    assert result['runs_finished'] == result['runs_planned'] == 2
    slkd = json.loads((out / 'study_runs' / 'study_derain_slkd_s0.json').read_text())
    assert set(slkd['curve']) == {'2', '4'} and slkd['seed'] == 0
    assert set(slkd['grad_shares']) == {'l_kd', 'l_nc', 'l_et'}
    assert slkd['teacher_checks']['teacher B'] > 38 and slkd['teacher_checks']['teacher A'] > 25
    entry = result['paired']['derain']['slkd']
    assert entry['vs'] == 'student' and entry['iters'] == 4 and entry['n_seeds'] == 1 and entry['ci95'] is None
    assert set(result['paired_by_iters']['derain']['slkd']) == {'2', '4'}
    teachers = result['tasks']['derain']['teachers']
    assert teachers['teacher A']['psnr'] > teachers['degraded input']['psnr']
    assert teachers['teacher B (clean->clean)']['psnr'] > 38
    log = (out / slkd['log']).read_text()
    assert 'share_l_kd' in log and 'Version Information' not in log and len(log) < 6000
    assert (out / 'study.png').stat().st_size > 0
    capsys.readouterr()

    again = study.main(args)  # every run is cached: nothing is trained again
    assert '2 finished before, 0 to train now' in capsys.readouterr().out
    assert again['paired'] == result['paired']
