"""BasicSR's own readers and datasets name the file, LMDB key or folder when data is missing, unpaired or corrupt."""
import cv2
import lmdb
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils import FileClient

from slkd_basicsr.data.data_checks import DataError
from slkd_basicsr.tools.make_lmdb import main as make_lmdb

NAMES = ['x1.png', 'x2.png']


@pytest.fixture
def pair(tmp_path, write_images):
    return write_images(tmp_path / 'lq', NAMES, seed=1), write_images(tmp_path / 'gt', NAMES, seed=2)


def paired_dataset(lq, gt, backend='disk'):
    return build_dataset({'name': 'pairs', 'type': 'PairedImageDataset', 'phase': 'val', 'scale': 1,
                          'dataroot_lq': str(lq), 'dataroot_gt': str(gt), 'io_backend': {'type': backend}})


def test_valid_pairs_read_as_before(pair):
    lq, gt = pair
    dataset = paired_dataset(lq, gt)
    item = next(item for item in dataset if item['gt_path'].endswith('x2.png'))
    expected = cv2.imread(str(gt / 'x2.png'))[..., ::-1].astype(np.float32) / 255
    assert torch.equal(item['gt'], torch.from_numpy(expected.copy()).permute(2, 0, 1))


def test_corrupt_file_is_named_by_paired_image_dataset(pair):
    lq, gt = pair
    (lq / 'x1.png').write_bytes(b'\x89PNG broken')
    dataset = paired_dataset(lq, gt)
    index = next(i for i in range(2) if dataset.paths[i]['lq_path'].endswith('x1.png'))
    with pytest.raises(DataError, match=r"Cannot decode image '.*lq/x1\.png'"):
        dataset[index]


def test_unpaired_folders_list_every_name(pair, write_images):
    lq, gt = pair
    write_images(gt, ['x3.png', 'x4.png'])
    with pytest.raises(DataError) as err:
        paired_dataset(lq, gt)
    assert 'GT without LQ (2): x3.png, x4.png' in str(err.value)


def test_missing_and_empty_folders_are_reported(pair, tmp_path):
    lq, _ = pair
    with pytest.raises(DataError, match="dataroot_gt: folder '/no/such/gt' does not exist"):
        paired_dataset(lq, '/no/such/gt')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='dataroot_gt: .* is empty'):
        paired_dataset(lq, tmp_path / 'empty')


def test_missing_lmdb_key_is_named(pair, tmp_path):
    lq, gt = pair
    assert make_lmdb(['--lq', str(lq), '--gt', str(gt), '--out', str(tmp_path / 'db')]) == 0
    env = lmdb.open(str(tmp_path / 'db' / 'gt.lmdb'))
    with env.begin(write=True) as txn:
        txn.delete(b'x2')
    env.close()
    dataset = paired_dataset(tmp_path / 'db' / 'lq.lmdb', tmp_path / 'db' / 'gt.lmdb', 'lmdb')
    assert dataset[0]['gt'].shape == (3, 32, 40)
    with pytest.raises(DataError, match=r"LMDB key missing: '.*gt\.lmdb:x2'"):
        dataset[1]


def test_lmdbs_with_different_keys_are_listed(tmp_path, write_images):
    make_lmdb(['--lq', str(write_images(tmp_path / 'lq', ['a.png', 'b.png'])), '--out', str(tmp_path / 'db')])
    make_lmdb(['--gt', str(write_images(tmp_path / 'gt', ['a.png', 'c.png'])), '--out', str(tmp_path / 'db')])
    with pytest.raises(DataError) as err:
        paired_dataset(tmp_path / 'db' / 'lq.lmdb', tmp_path / 'db' / 'gt.lmdb', 'lmdb')
    assert 'LQ without GT (1): b' in str(err.value) and 'GT without LQ (1): c' in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="Image file '.*gone.png' not found"):
        FileClient('disk').get(str(tmp_path / 'gone.png'))


def _train_dataset(lq, gt, gt_size=16):
    return build_dataset({'name': 'pairs', 'type': 'PairedImageDataset', 'phase': 'train', 'scale': 1,
                          'dataroot_lq': str(lq), 'dataroot_gt': str(gt), 'io_backend': {'type': 'disk'},
                          'gt_size': gt_size, 'use_hflip': False, 'use_rot': False})


def _index_of(dataset, name):
    return next(i for i, p in enumerate(dataset.paths) if p['lq_path'].endswith(name))


@pytest.mark.parametrize('phase', ['train', 'val'])
def test_size_mismatch_names_the_pair(tmp_path, write_images, phase):
    lq = write_images(tmp_path / 'lq', NAMES, shape=(32, 40), seed=1)
    gt = write_images(tmp_path / 'gt', ['x1.png'], shape=(32, 40), seed=2)
    write_images(gt, ['x2.png'], shape=(24, 40), seed=3)  # smaller GT
    dataset = _train_dataset(lq, gt) if phase == 'train' else paired_dataset(lq, gt)
    with pytest.raises(DataError, match=r"LQ/GT size mismatch: LQ '.*lq/x2\.png' is 32x40 and GT '.*gt/x2\.png' "
                       r'is 24x40; they must have the same size'):
        dataset[_index_of(dataset, 'x2.png')]
    assert dataset[_index_of(dataset, 'x1.png')]['lq'].shape == ((3, 16, 16) if phase == 'train' else (3, 32, 40))


def test_lq_smaller_than_the_patch_names_both_files(pair):
    lq, gt = pair
    dataset = _train_dataset(lq, gt, gt_size=64)
    with pytest.raises(DataError, match=r"smaller than patch size.* Pair: LQ '.*lq/x1\.png', GT '.*gt/x1\.png'"):
        dataset[_index_of(dataset, 'x1.png')]


def test_gray_gt_with_colour_lq_is_said_once(tmp_path, write_images, caplog):
    lq = write_images(tmp_path / 'lq', NAMES, seed=1)
    gt = tmp_path / 'gt'
    gt.mkdir()
    for name in NAMES:
        cv2.imwrite(str(gt / name), np.random.default_rng(2).integers(0, 256, (32, 40), dtype=np.uint8))
    dataset = paired_dataset(lq, gt)
    with caplog.at_level('WARNING', logger='basicsr'):
        item = dataset[0]
        dataset[1]
    notices = [r.getMessage() for r in caplog.records if 'stored colour and GT' in r.getMessage()]
    assert len(notices) == 1 and "Dataset 'pairs'" in notices[0] and 'gray' in notices[0]
    assert item['gt'].shape == item['lq'].shape  # still read as BasicSR reads it (three equal channels)
