"""bench/step_cost.py runs on the shipped deraining recipe (random teachers) under bf16."""
import json

from helpers import load_bench_script


def test_step_cost_runs_under_bf16(tmp_path):
    step_cost = load_bench_script('step_cost')
    result = step_cost.main(['--patches', '32', '--batch', '1', '--repeats', '1', '--amp', 'bf16', '--threads', '2',
                             '--out', str(tmp_path)])
    assert result['amp'] == 'bf16' and [row['patch'] for row in result['rows']] == [32]
    row = result['rows'][0]
    assert row['seconds']['slkd'] > 0 and row['seconds']['unavoidable'] > 0 and row['ratio'] > 0
    assert json.loads((tmp_path / 'step_cost_bf16.json').read_text())['rows'][0]['patch'] == 32
    assert (tmp_path / 'step_cost_bf16.png').is_file()
