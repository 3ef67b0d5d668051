"""The code follows the lint settings in setup.cfg: flake8 clean and isort-sorted."""
import subprocess
import sys

import pytest

from helpers import REPO_ROOT

PATHS = ['slkd_basicsr', 'bench', 'tests']


@pytest.mark.parametrize('command', [['flake8'], ['isort', '--check-only', '--diff']], ids=['flake8', 'isort'])
def test_lint_is_clean(command):
    proc = subprocess.run([sys.executable, '-m', *command, *PATHS], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
