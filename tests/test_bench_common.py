"""bench/_common.py (machine record) and where bench/complexity.py takes its networks from."""
import os

import pytest

from helpers import load_bench_script


@pytest.fixture(scope='module')
def common():
    return load_bench_script('_common')


def test_machine_record_says_load_before_and_after(common):
    record = common.machine_record([9.0, 8.0, 7.0])
    assert record['load_average_before_after'][0] == [9.0, 8.0, 7.0]
    assert len(record['load_average_before_after'][1]) == 3
    assert record['cpu_count'] == os.cpu_count() and record['device'] == 'cpu'
    assert {'cpu', 'torch', 'torch_threads', 'OMP_NUM_THREADS', 'OMP_WAIT_POLICY'} <= set(record)


def test_complexity_pairs_are_the_shipped_recipes_teacher_a_and_student():
    complexity = load_bench_script('complexity')
    families = {}
    for entry in complexity.ENTRIES:
        assert entry['recipe'].startswith('options/')
        teacher, student = complexity.recipe_networks(entry['recipe'])
        assert teacher != student
        families[entry['name']] = teacher['type']
    assert families == {'Restormer (deraining)': 'Restormer', 'NAFNet-w32 (SIDD)': 'NAFNet',
                        'NAFNet-w64 (GoPro)': 'NAFNet', 'DRSformer (deraining)': 'DRSformer'}
