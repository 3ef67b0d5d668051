import os

import pytest
import torch
from basicsr.data import build_dataset

import slkd_basicsr  # noqa: F401  (registers the plugin)
from helpers import run_entry
from slkd_basicsr.tools import guard, make_lmdb

NAMES = ['0001.png', '0002.png', '0003.jpg']


@pytest.fixture(autouse=True)
def no_traceback_asked(monkeypatch):
    monkeypatch.delenv(guard.TRACEBACK_ENV, raising=False)


def refused(argv, capsys) -> str:
    """Run slkd-make-lmdb with ``argv``: it must stop with exit status 2 and one message on stderr after the progress
    bars of the image check (if it got that far); that message."""
    with pytest.raises(SystemExit) as stop:
        make_lmdb.main(argv)
    assert stop.value.code == 2
    bars, prog, message = capsys.readouterr().err.partition('slkd-make-lmdb: ')
    assert prog and all(bar.startswith('Check --') for bar in bars.replace('\r', '\n').split('\n') if bar), bars
    assert 'Traceback' not in message
    return prog + message


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
    err = refused(['--lq', str(lq), '--gt', str(gt), '--out', str(out)], capsys)
    assert err == f"slkd-make-lmdb: {gt / '0002.png'}: cannot be read (corrupt or not an image). Nothing was written.\n"
    assert not out.exists()


def test_unmatched_names_are_listed(pair, tmp_path, write_images, capsys):
    lq, gt = pair
    write_images(lq, ['0009.png'])
    (gt / '0001.png').unlink()
    err = refused(['--lq', str(lq), '--gt', str(gt), '--out', str(tmp_path / 'db')], capsys)
    assert 'LQ without GT (2): 0001, 0009' in err and err.endswith('\nNothing was written.\n')
    assert not (tmp_path / 'db').exists()


def test_keys_basicsr_cannot_read_back_are_refused(pair, tmp_path, write_images, capsys):
    _, gt = pair
    write_images(gt, ['img.v2.png'])
    assert 'img.v2.png: LMDB keys must be ASCII without dots' in refused(['--gt', str(gt), '--out',
                                                                          str(tmp_path / 'db')], capsys)


def test_existing_lmdb_is_not_overwritten(pair, tmp_path, capsys):
    _, gt = pair
    (tmp_path / 'db' / 'gt.lmdb').mkdir(parents=True)
    assert 'already exist' in refused(['--gt', str(gt), '--out', str(tmp_path / 'db')], capsys)
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
    err = refused(['--gt', str(gt), '--out', str(tmp_path / 'db')], capsys)
    assert err == (f"slkd-make-lmdb: --out '{tmp_path / 'db'}' is a file, not a folder; give a folder (it is created "
                   'if needed). Nothing was written.\n')
    assert (tmp_path / 'db').read_text() == 'not a folder'


def test_a_loop_of_symbolic_links_in_the_input_is_one_line(pair, tmp_path):
    """An OS fault (a file that is a link to itself) ends the command as the project's errors do."""
    _, gt = pair
    os.symlink('0009.png', gt / '0009.png')
    proc = run_entry('slkd_basicsr.tools.make_lmdb', ['--gt', str(gt), '--out', str(tmp_path / 'db')], str(tmp_path),
                     env={guard.TRACEBACK_ENV: '0'})
    assert proc.returncode == 2
    assert proc.stderr == (f"slkd-make-lmdb: Too many levels of symbolic links: {gt / '0009.png'}; a loop of symbolic "
                           'links: fix or remove the link.\n')
    assert not (tmp_path / 'db').exists()
