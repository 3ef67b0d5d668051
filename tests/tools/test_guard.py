"""Entry points end on the project's errors and common OS faults with one line and exit status 2; bugs keep their
traceback."""
import errno
import sys

import pytest

from slkd_basicsr.compat import CheckpointError
from slkd_basicsr.data.data_checks import DataError
from slkd_basicsr.models.feature_taps import TapError
from slkd_basicsr.models.slkd_model import NonFiniteLossError
from slkd_basicsr.models.teacher_checks import TeacherCheckError
from slkd_basicsr.tools import guard


@pytest.mark.parametrize('err, expected', [
    (OSError(errno.ENOSPC, 'No space left on device', '/data/exp/models/net_g_8.pth'),
     'No space left on device: /data/exp/models/net_g_8.pth; the disk is full: free some space, then run it again '
     '(slkd-train: with --auto_resume, to continue).'),
    (PermissionError(errno.EACCES, 'Permission denied', '/data/ro/experiments'),
     'Permission denied: /data/ro/experiments; check its permissions, or run from a folder you can write to.'),
    (OSError(errno.ELOOP, 'Too many levels of symbolic links', '/data/loop'),
     'Too many levels of symbolic links: /data/loop; a loop of symbolic links: fix or remove the link.'),
])
def test_common_os_faults_are_one_line_saying_what_to_do(err, expected, capsys, monkeypatch):
    monkeypatch.delenv(guard.TRACEBACK_ENV, raising=False)
    monkeypatch.setattr(sys, 'argv', ['slkd-train'])

    def main():
        raise err

    with pytest.raises(SystemExit) as stop:
        guard.main_guard('slkd-train', main)
    assert stop.value.code == 2 and capsys.readouterr().err == f'slkd-train: {expected}\n'


@pytest.mark.parametrize('error', [CheckpointError, TapError, TeacherCheckError, NonFiniteLossError, DataError])
def test_the_projects_errors_are_one_line_unless_a_traceback_is_asked_for(error, capsys, monkeypatch):
    monkeypatch.delenv(guard.TRACEBACK_ENV, raising=False)
    monkeypatch.setattr(sys, 'argv', ['slkd-train'])

    def main():
        raise error('what went wrong; what to do')

    with pytest.raises(SystemExit) as stop:
        guard.main_guard('slkd-train', main)
    assert stop.value.code == 2 and capsys.readouterr().err == 'slkd-train: what went wrong; what to do\n'
    monkeypatch.setenv(guard.TRACEBACK_ENV, '1')
    with pytest.raises(error):
        guard.main_guard('slkd-train', main)
    monkeypatch.setenv(guard.TRACEBACK_ENV, '0')
    monkeypatch.setattr(sys, 'argv', ['slkd-train', '--debug'])
    with pytest.raises(error):
        guard.main_guard('slkd-train', main)


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.delenv(guard.TRACEBACK_ENV, raising=False)

    def main():
        raise ZeroDivisionError('a bug')

    with pytest.raises(ZeroDivisionError):
        guard.main_guard('slkd-train', main)
