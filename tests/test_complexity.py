"""slkd_basicsr.complexity: the counts the training log and bench/complexity.py print, and the one timing helper."""
import os
import subprocess
import sys

from torch import nn

from helpers import REPO_ROOT
from slkd_basicsr.complexity import count_flops, count_params, flop_analysis, interleaved_times


def test_flops_are_multiply_adds_and_uncounted_ops_are_named():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GELU()).train()
    flops, uncounted = flop_analysis(net, (3, 8, 8))
    assert flops == 4 * 3 * 9 * 8 * 8  # one per multiply-add of the convolution
    assert uncounted == ['aten::gelu']
    assert count_flops(net, (3, 8, 8)) == flops
    assert net.training  # the mode it came in
    assert count_params(net) == 4 * 3 * 9 + 4


def test_interleaved_times_alternate_steps_after_a_warm_up_round():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ('a', 'b', 'c')}
    times = interleaved_times(steps, repeats=3)
    assert calls == ['a', 'b', 'c'] * 4  # one warm-up round, then three timed ones, always in turn
    assert {name: len(values) for name, values in times.items()} == {'a': 3, 'b': 3, 'c': 3}
    assert all(t >= 0 for values in times.values() for t in values)


def test_cpu_latency_is_timed_without_a_word_on_stderr():
    """torch.utils.benchmark's import logs "No CUDA runtime is found" where a CUDA toolkit has no GPU: not here."""
    probe = ('import torch; from slkd_basicsr.complexity import cpu_latency_ms; '
             'print(cpu_latency_ms(torch.nn.Conv2d(3, 3, 1), size=8, threads=1) > 0)')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == 'True', proc.stderr[-2000:]
    assert proc.stderr == ''
