"""The main job in a reduced form: shipped Teacher A, Teacher B, SLKD, table and grid."""
import json

import cv2

from slkd_basicsr import demo


def test_demo_writes_table_and_grid(tmp_path, capsys):
    demo.main(['--workdir', str(tmp_path), '--teacher-b-iters', '2', '--student-iters', '4'])
    results = tmp_path / 'results'
    rows = json.loads((results / 'slkd_demo_table.json').read_text())
    assert set(rows) == {'teacher A', 'student (SLKD)'}
    for row in rows.values():
        assert {'psnr', 'ssim', 'piqe', 'params_M', 'GFLOPs_256', 'cpu_ms_256'} <= set(row)
    assert rows['student (SLKD)']['params_M'] < 0.3 * rows['teacher A']['params_M']
    assert rows['teacher A']['psnr'] > 25  # the shipped teacher restores the held-out rainy photos
    grid = cv2.imread(str(results / 'slkd_demo_grid.png'))
    assert grid is not None and grid.shape[1] > 3 * grid.shape[0]  # four panels side by side
    assert '| student (SLKD) |' in capsys.readouterr().out
