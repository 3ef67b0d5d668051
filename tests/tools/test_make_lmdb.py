import os

import pytest
import torch
from basicsr.data import build_dataset

import slkd_basicsr  # noqa: F401  (registers the plugin)
from slkd_basicsr.tools import make_lmdb

NAMES = ['0001.png', '0002.png', '0003.jpg']


@pytest.fixture
def pair(tmp_path, write_images):
    lq = write_images(tmp_path / 'input', NAMES, seed=1)
    gt = write_images(tmp_path / 'target', NAMES, seed=2)
    return lq, gt


def paired_dataset(lq, gt, backend):
    return build_dataset({'name': 'pairs', 'type': 'PairedImageDataset', 'phase': 'val', 'scale': 1,
                          'dataroot_lq': str(lq), 'dataroot_gt': str(gt), 'io_backend': {'type': backend}})


def test_lmdb_is_read_by_basicsr_with_the_same_pixels(pair, tmp_path):
    lq, gt = pair
    out = tmp_path / 'db'
    assert make_lmdb.main(['--lq', str(lq), '--gt', str(gt), '--out', str(out)]) == 0
    assert sorted(os.listdir(out)) == ['gt.lmdb', 'lq.lmdb']
    meta = (out / 'gt.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert meta == ['0001.png (32,40,3) 1', '0002.png (32,40,3) 1', '0003.png (32,40,3) 1']
    from_lmdb = paired_dataset(out / 'lq.lmdb', out / 'gt.lmdb', 'lmdb')
    from_folder = paired_dataset(lq, gt, 'disk')
    assert len(from_lmdb) == len(from_folder) == 3
    by_key = {os.path.splitext(os.path.basename(item['gt_path']))[0]: item for item in from_folder}
    for item in from_lmdb:
        assert torch.equal(item['lq'], by_key[item['gt_path']]['lq'])
        assert torch.equal(item['gt'], by_key[item['gt_path']]['gt'])


def test_one_folder_at_a_time(pair, tmp_path):
    _, gt = pair
    assert make_lmdb.main(['--gt', str(gt), '--out', str(tmp_path / 'db')]) == 0
    assert os.listdir(tmp_path / 'db') == ['gt.lmdb']


def test_corrupt_file_is_named_and_nothing_is_written(pair, tmp_path, capsys):
    lq, gt = pair
    data = (gt / '0002.png').read_bytes()
    (gt / '0002.png').write_bytes(data[:len(data) // 2])  # truncated
    out = tmp_path / 'db'
    assert make_lmdb.main(['--lq', str(lq), '--gt', str(gt), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{gt / '0002.png'}: cannot be read" in err and 'Nothing was written' in err
    assert not out.exists()


def test_unmatched_names_are_listed(pair, tmp_path, write_images, capsys):
    lq, gt = pair
    write_images(lq, ['0009.png'])
    (gt / '0001.png').unlink()
    assert make_lmdb.main(['--lq', str(lq), '--gt', str(gt), '--out', str(tmp_path / 'db')]) == 1
    err = capsys.readouterr().err
    assert 'LQ without GT (2): 0001, 0009' in err
    assert not (tmp_path / 'db').exists()


def test_keys_basicsr_cannot_read_back_are_refused(pair, tmp_path, write_images, capsys):
    _, gt = pair
    write_images(gt, ['img.v2.png'])
    assert make_lmdb.main(['--gt', str(gt), '--out', str(tmp_path / 'db')]) == 1
    assert 'img.v2.png: LMDB keys must be ASCII without dots' in capsys.readouterr().err


def test_existing_lmdb_is_not_overwritten(pair, tmp_path, capsys):
    _, gt = pair
    (tmp_path / 'db' / 'gt.lmdb').mkdir(parents=True)
    assert make_lmdb.main(['--gt', str(gt), '--out', str(tmp_path / 'db')]) == 1
    assert 'already exist' in capsys.readouterr().err
    assert os.listdir(tmp_path / 'db' / 'gt.lmdb') == []


def test_failure_while_writing_leaves_nothing_behind(pair, tmp_path, monkeypatch):
    lq, gt = pair
    real_make = make_lmdb.make_lmdb_from_imgs
    calls = []

    def fail_on_second(data_path, lmdb_path, *args, **kwargs):
        calls.append(lmdb_path)
        real_make(data_path, lmdb_path, *args, **kwargs)
        if len(calls) == 2:
            raise OSError('disk full')

    monkeypatch.setattr(make_lmdb, 'make_lmdb_from_imgs', fail_on_second)
    out = tmp_path / 'db'
    with pytest.raises(OSError, match='disk full'):
        make_lmdb.main(['--lq', str(lq), '--gt', str(gt), '--out', str(out)])
    assert len(calls) == 2 and os.listdir(out) == []


def test_no_folder_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        make_lmdb.main(['--out', str(tmp_path)])
    assert exc.value.code == 2


def test_out_that_is_a_file_is_one_clear_error(pair, tmp_path, capsys):
    _, gt = pair
    (tmp_path / 'db').write_text('not a folder')
    assert make_lmdb.main(['--gt', str(gt), '--out', str(tmp_path / 'db')]) == 1
    err = capsys.readouterr().err
    assert 'is a file, not a folder' in err and 'Traceback' not in err and 'Nothing was written' in err
