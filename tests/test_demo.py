"""The main job in a reduced form: shipped teachers, the student alone and with SLKD, table and grid."""
import json

import cv2

from slkd_basicsr import demo


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
