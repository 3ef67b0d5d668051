"""The other bench scripts in a quick mode (one small entry, one repeat): each still runs and writes its record, so a
bench that breaks fails the default suite. The figures themselves come from the full runs (docs/benchmarks.md)."""
import json

import pytest

from helpers import load_bench_script


def test_complexity_quick_run(tmp_path):
    load_bench_script('complexity').main(['--only', 'NAFNet', '--size', '32', '--repeats', '1', '--out',
                                          str(tmp_path)])
    record = json.loads((tmp_path / 'complexity.json').read_text())
    assert record['rows'] and all('NAFNet' in row['name'] for row in record['rows'])
    assert record['machine']['load_average_before_after'] and (tmp_path / 'complexity.png').is_file()


def test_deploy_quick_run(tmp_path):
    pytest.importorskip('onnxruntime')
    load_bench_script('deploy').main(['--only', 'NAFNet-w32', '--size', '32', '--repeats', '1', '--out',
                                      str(tmp_path)])
    record = json.loads((tmp_path / 'deploy.json').read_text())
    assert [row['name'] for row in record['rows']] == ['NAFNet-w32 (SIDD)']
    assert record['machine']['load_average_before_after'] and (tmp_path / 'deploy.png').is_file()


def test_extractors_quick_run(tmp_path):
    result = load_bench_script('extractors').main(['--repeats', '1', '--out', str(tmp_path)])
    assert result['student_step_s'] > 0
    assert all(record['both_ratio'] > 0 for record in result['variants'].values())
    assert json.loads((tmp_path / 'extractors.json').read_text())['patch'] == result['patch']
