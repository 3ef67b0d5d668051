"""The main job in a reduced form: shipped teachers, the student alone and with SLKD, table and grid."""
import json
import os
import sys
import tempfile

import cv2
import pytest

from slkd_basicsr.recipes import runs
from slkd_basicsr.tools import demo, guard


def test_demo_writes_table_and_grid(tmp_path, capsys):
    demo.main(['--workdir', str(tmp_path), '--student-iters', '4', '--seed', '3'])
    results = tmp_path / 'results'
    rows = json.loads((results / 'slkd_demo_table.json').read_text())
    assert set(rows) == {'teacher A', 'teacher B', 'student alone', 'student (SLKD)'}
    for row in rows.values():
        assert {'psnr', 'ssim', 'piqe', 'params_M', 'GFLOPs_256', 'cpu_ms_256'} <= set(row)
    assert rows['student (SLKD)']['params_M'] < 0.15 * rows['teacher A']['params_M']
    assert rows['student alone']['params_M'] == rows['student (SLKD)']['params_M']
    assert rows['teacher A']['psnr'] > 25  # the shipped teacher restores the held-out rainy photos
    assert rows['teacher B']['psnr'] > 38  # and the shipped Teacher B reconstructs the clean ones
    grid = cv2.imread(str(results / 'slkd_demo_grid.png'))
    assert grid is not None and grid.shape == (256, 5 * 256, 3)  # five 256 px panels side by side
    out = capsys.readouterr().out
    assert '| student alone |' in out and '| student (SLKD) |' in out and 'seed 3' in out
    gain = rows['student (SLKD)']['psnr'] - rows['student alone']['psnr']
    lines = out.rstrip().splitlines()
    assert lines[-4] == f'paired gain (SLKD - student alone): {gain:+.2f} dB PSNR'
    slkd_s, alone_s = rows['student (SLKD)']['train_s'], rows['student alone']['train_s']
    assert rows['teacher A']['train_s'] is None and slkd_s > 0 and alone_s > 0
    assert lines[-3] == f'training time: SLKD {slkd_s:.0f} s, student alone {alone_s:.0f} s ({slkd_s / alone_s:.1f}x)'
    assert ' | - |' in out  # the shipped teachers were not trained in this run
    for name in ('demo_student_alone', 'demo_slkd_student'):  # both students ran with the requested seed
        assert 'manual_seed: 3' in (tmp_path / 'options' / f'{name}.yml').read_text()
    log = next((tmp_path / 'experiments' / 'demo_slkd_student').glob('train_*.log')).read_text()
    assert 'Teacher check: teacher B (clean -> clean) PSNR' in log


# ---- bad arguments and failed runs (issue 26) --------------------------------------------------------------------

@pytest.mark.parametrize('args, message', [
    (['--student-iters', '0'], 'argument --student-iters: 0 is out of range; it must be >= 1'),
    (['--student-iters', 'ten'], "argument --student-iters: 'ten' is not an integer"),
    (['--seed', '-1'], 'argument --seed: -1 is out of range; it must be >= 0'),
    (['--train-teacher-a', '-5'], 'argument --train-teacher-a: -5 is out of range; it must be >= 0'),
    (['--train-teacher-b', '-5'], 'argument --train-teacher-b: -5 is out of range; it must be >= 0'),
    (['--workdir', 'a_file'], "argument --workdir: '{tmp}/a_file' is a file, not a folder"),
    (['--workdir', 'a_file/demo'], "argument --workdir: '{tmp}/a_file/demo' cannot be made: '{tmp}/a_file' is a file"),
])
def test_bad_argument_is_one_line_and_makes_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)  # where the default --workdir would go
    (tmp_path / 'a_file').write_text('not a folder')
    with pytest.raises(SystemExit) as exit_info:
        demo.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f'slkd-demo: error: {message.format(tmp=tmp_path)}') and err.count('\n') == 1
    assert os.listdir(tmp_path) == ['a_file']


def test_unwritable_workdir_parent_is_one_line(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):  # permissions do not bind root: refuse the file as the kernel would for a user
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(tempfile, 'TemporaryFile', refuse)
    with pytest.raises(SystemExit) as exit_info:
        demo.main(['--workdir', str(tmp_path / 'demo')])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (f"slkd-demo: error: argument --workdir: '{tmp_path}/demo' cannot be made: "
                                       f"'{tmp_path}' is not writable (Permission denied) (see slkd-demo --help)\n")
    assert not os.listdir(tmp_path)


def test_failed_training_run_is_one_line_naming_its_log(tmp_path, monkeypatch, capsys):
    # a child that fails at once stands in for a training run that fails
    monkeypatch.setattr(runs, 'TRAIN_COMMAND', (sys.executable, '-c', 'import sys; print("run broke"); sys.exit(3)'))
    assert demo.main(['--workdir', str(tmp_path), '--student-iters', '1']) == 2
    captured = capsys.readouterr()
    log = tmp_path / 'logs' / 'demo_student_alone.log'
    assert captured.err == (f'slkd-demo: error: training run demo_student_alone failed (exit status 3); its output '
                            f'is in {log}\n')
    assert log.read_text() == 'run broke\n' and 'run broke' in captured.out  # in the log and echoed as it came


def test_a_missing_shipped_teacher_is_one_line_and_makes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(guard.TRACEBACK_ENV, raising=False)
    missing = tmp_path / 'assets' / 'demo_teacher_b.pth'
    monkeypatch.setattr(demo, 'ASSET_TEACHER_B', str(missing))
    with pytest.raises(SystemExit) as exit_info:
        demo.main(['--workdir', str(tmp_path / 'demo')])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (f'slkd-demo: the shipped checkpoint {missing} is missing; reinstall the '
                                       'package or run slkd-demo --train-teacher-b 1000. Nothing was made.\n')
    assert os.listdir(tmp_path) == []
