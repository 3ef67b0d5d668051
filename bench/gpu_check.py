"""Everything that needs a GPU to be verified, in one run on the first CUDA machine available (under 5 minutes).

1. The tests of the GPU paths: ``tests/test_cuda.py`` (steps without copies or synchronisations, bf16 and fp16
   training, ``--auto_resume`` ending where an uninterrupted run ends, two ranks over NCCL when two GPUs exist)
   and the CPU-side checks of the same paths (meta / fake-CUDA devices, bf16, copy counters), now with CUDA.
2. ``bench/step_cost.py`` on the GPU, in float32 and with ``--amp bf16`` (patches 64 and 128, batch 4).

Writes ``gpu_check.json`` to ``--out`` (``bench/results``): the machine, each test's outcome, the step costs,
and the seconds each part took. Exits non-zero if a test failed or no CUDA device is visible.

    python bench/gpu_check.py [--out DIR] [--skip-step-cost]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from os import path as osp
from typing import Any, Dict, List

import torch

from _common import RESULTS, ROOT, machine_record

GPU_TESTS = ['tests/test_cuda.py', 'tests/models/test_gpu_paths.py', 'tests/models/test_precision.py',
             'tests/losses/test_loss_devices.py', 'tests/nss/test_device.py']
TEST_TIMEOUT_S = 240


def test_outcomes(junit_xml: str) -> Dict[str, str]:
    """``{test id: passed | failed | error | skipped}`` from a pytest JUnit XML report."""
    outcomes = {}
    for case in ElementTree.parse(junit_xml).getroot().iter('testcase'):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ('failure', 'error', 'skipped')]
        outcomes[name] = {'failure': 'failed', 'error': 'error', 'skipped': 'skipped'}.get(
            kinds[0] if kinds else '', 'passed')
    return outcomes


def run_tests(tests: List[str]) -> Dict[str, Any]:
    """Run ``tests`` with pytest in a subprocess (CUDA visible); their outcomes and the summary line."""
    with tempfile.TemporaryDirectory() as tmp:
        report = osp.join(tmp, 'report.xml')
        start = time.time()
        proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', f'--junitxml={report}',
                               *tests], cwd=ROOT, capture_output=True, text=True, timeout=TEST_TIMEOUT_S)
        outcomes = test_outcomes(report) if osp.isfile(report) else {}
    summary = (proc.stdout.strip().splitlines() or [''])[-1]
    return {'returncode': proc.returncode, 'summary': summary, 'seconds': round(time.time() - start, 1),
            'outcomes': outcomes, 'output_tail': (proc.stdout + proc.stderr)[-4000:] if proc.returncode else ''}


def run_step_cost(amp: str) -> Dict[str, Any]:
    """``bench/step_cost.py`` on the GPU (``amp`` '' for float32); its rows."""
    import step_cost

    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        result = step_cost.main(['--patches', '64', '128', '--batch', '4', '--repeats', '3', '--out', tmp] +
                                (['--amp', amp] if amp else []))
    return {'amp': amp or False, 'seconds': round(time.time() - start, 1), 'rows': result['rows']}


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=RESULTS, help='folder for gpu_check.json')
    parser.add_argument('--skip-step-cost', action='store_true', help='run the tests only')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print('gpu_check: no CUDA device is visible; run it on a GPU machine.', file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    result = {'tests': run_tests(GPU_TESTS), 'cuda_devices': torch.cuda.device_count()}
    print(f"tests: {result['tests']['summary']} ({result['tests']['seconds']} s)")
    if not args.skip_step_cost:
        result['step_cost'] = [run_step_cost(amp) for amp in ('', 'bf16')]
        for run in result['step_cost']:
            for row in run['rows']:
                print(f"step_cost amp {run['amp'] or 'off'}, patch {row['patch']}: "
                      f"SLKD {row['seconds']['slkd']:.4f} s, unavoidable {row['seconds']['unavoidable']:.4f} s, "
                      f"ratio {row['ratio']:.2f}")
    result['machine'] = machine_record(load_before, torch.device('cuda', 0))
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'gpu_check.json'), 'w') as f:
        json.dump(result, f, indent=2)
    failed = [name for name, outcome in result['tests']['outcomes'].items() if outcome in ('failed', 'error')]
    for name in failed:
        print(f'FAILED {name}', file=sys.stderr)
    return 1 if failed or result['tests']['returncode'] not in (0, 5) else 0


if __name__ == '__main__':
    sys.exit(main())
