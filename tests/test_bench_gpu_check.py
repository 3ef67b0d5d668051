"""bench/gpu_check.py: refuses to run without CUDA; reads each test's outcome from pytest's JUnit report."""
import torch

from helpers import load_bench_script

REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_cuda" name="test_a"/>
<testcase classname="tests.test_cuda" name="test_b"><failure message="boom"/></testcase>
<testcase classname="tests.test_cuda" name="test_c"><skipped message="needs two GPUs"/></testcase>
<testcase classname="tests.test_cuda" name="test_d"><error message="fixture"/></testcase>
</testsuite></testsuites>"""


def test_outcomes_from_a_junit_report(tmp_path):
    gpu_check = load_bench_script('gpu_check')
    (tmp_path / 'report.xml').write_text(REPORT)
    assert gpu_check.test_outcomes(str(tmp_path / 'report.xml')) == {
        'tests.test_cuda::test_a': 'passed', 'tests.test_cuda::test_b': 'failed',
        'tests.test_cuda::test_c': 'skipped', 'tests.test_cuda::test_d': 'error'}


def test_without_cuda_it_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    gpu_check = load_bench_script('gpu_check')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert gpu_check.main(['--out', str(tmp_path)]) == 2
    assert 'no CUDA device' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_every_gpu_test_file_exists():
    import os

    gpu_check = load_bench_script('gpu_check')
    assert all(os.path.isfile(os.path.join(gpu_check.ROOT, path)) for path in gpu_check.GPU_TESTS)
