"""bench/step_cost.py in a quick mode: both setups, two variants, under bf16; the ratios it prints are measured."""
import json

import torch
from basicsr.archs import build_network

from helpers import load_bench_script


def test_step_cost_quick_run(tmp_path):
    step_cost = load_bench_script('step_cost')
    result = step_cost.main(['--patches', '32', '--batch', '1', '--repeats', '1', '--iters-per-call', '1', '--amp',
                             'bf16', '--variants', 'shipped', 'whole_batch', '--tiny-teachers', 'shipped',
                             'student_sized', '--out', str(tmp_path)])
    assert result['amp'] == 'bf16'
    assert [(row['setup'], row['patch'], row['teachers']) for row in result['rows']] == [
        ('shipped', 32, 'shipped'), ('tiny', 64, 'shipped'), ('tiny', 64, 'student_sized')]
    for row in result['rows']:
        assert set(row['seconds']) == {'slkd_shipped', 'slkd_whole_batch', 'student', 'unavoidable'}
        assert all(seconds > 0 for seconds in row['seconds'].values())
        for name in ('shipped', 'whole_batch'):
            assert row['vs_student'][name] == row['seconds'][f'slkd_{name}'] / row['seconds']['student']
    assert json.loads((tmp_path / 'step_cost_bf16.json').read_text())['rows'][0]['patch'] == 32
    assert (tmp_path / 'step_cost_bf16.png').is_file()


def test_term_variants_change_only_the_distillation_terms():
    step_cost = load_bench_script('step_cost')
    opt = step_cost.tiny_options()
    l1, kd_only = step_cost.with_terms(opt, 'feature_l1'), step_cost.with_terms(opt, 'kd_only')
    for key in ('nc_opt', 'et_opt'):
        assert l1['train'][key] == {'type': 'FeatureL1Loss', 'loss_weight': opt['train'][key]['loss_weight']}
        assert key not in kd_only['train']
    assert kd_only['train']['kd_opt'] == l1['train']['kd_opt'] == opt['train']['kd_opt']
    assert step_cost.with_terms(opt, 'shipped') == opt


def test_tiny_teachers_of_another_size_replace_only_the_teachers(tmp_path):
    step_cost = load_bench_script('step_cost')
    shipped, small = step_cost.tiny_options(), step_cost.tiny_options('student_sized', str(tmp_path))
    assert small['network_teacher_a'] == {**shipped['network_g'], 'global_residual': True}
    assert small['network_teacher_b'] == {**shipped['network_g'], 'global_residual': False}
    for which in ('a', 'b'):  # random weights of that arch, loadable as the model will load them
        build_network(dict(small[f'network_teacher_{which}'])).load_state_dict(
            torch.load(small['path'][f'pretrain_network_teacher_{which}'], weights_only=True)['params'])
    for key in ('network_g', 'train', 'datasets', 'distill'):
        assert small[key] == shipped[key]
