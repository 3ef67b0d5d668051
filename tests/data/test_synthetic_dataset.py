import cv2
import lmdb
import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.utils import set_random_seed

import slkd_basicsr  # noqa: F401  (registers the plugin)
from slkd_basicsr.data.data_checks import DataError
from slkd_basicsr.tools.make_lmdb import main as make_lmdb

NAMES = ['a.png', 'b.png', 'c.png']
DEGRADATIONS = [{'type': 'rain', 'density': 0.02}, {'type': 'noise', 'sigma': [5, 30]}]


def options(phase='val', **extra):
    opt = {'name': 'synthetic', 'type': 'SyntheticDegradationDataset', 'phase': phase, 'scale': 1,
           'degradations': DEGRADATIONS, 'io_backend': {'type': 'disk'}}
    if phase == 'train':
        opt.update(gt_size=32, use_hflip=False, use_rot=False)
    opt.update(extra)
    return opt


@pytest.fixture
def gt_folder(tmp_path, write_images):
    return write_images(tmp_path / 'gt', NAMES)


def test_items_look_like_paired_image_dataset(gt_folder):
    dataset = build_dataset(options('train', dataroot_gt=str(gt_folder), use_hflip=True, use_rot=True))
    assert len(dataset) == 3
    item = dataset[1]
    assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path'}
    assert item['gt_path'] == item['lq_path'] == str(gt_folder / 'b.png')
    for key in ('lq', 'gt'):
        assert item[key].shape == (3, 32, 32) and item[key].dtype == torch.float32
        assert 0 <= item[key].min() and item[key].max() <= 1
    assert not torch.equal(item['lq'], item['gt'])


def test_gt_is_the_file_in_rgb(gt_folder):
    item = build_dataset(options(dataroot_gt=str(gt_folder)))[0]
    bgr = cv2.imread(str(gt_folder / 'a.png')).astype('float32') / 255
    assert torch.equal(item['gt'], torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1))


def test_validation_is_deterministic_per_index_and_seed(gt_folder):
    dataset = build_dataset(options(dataroot_gt=str(gt_folder)))
    assert dataset[0]['lq'].shape == (3, 32, 40)  # whole image, no crop
    assert torch.equal(dataset[0]['lq'], dataset[0]['lq'])
    assert torch.equal(dataset[0]['lq'], build_dataset(options(dataroot_gt=str(gt_folder)))[0]['lq'])
    other_seed = build_dataset(options(dataroot_gt=str(gt_folder), seed=1))
    assert not torch.equal(dataset[0]['lq'], other_seed[0]['lq'])


def test_draws_give_independent_copies_of_each_image(gt_folder):
    single = build_dataset(options(dataroot_gt=str(gt_folder)))
    dataset = build_dataset(options(dataroot_gt=str(gt_folder), draws=3))
    assert len(dataset) == 3 * len(single)
    items = [dataset[i] for i in range(3)]  # the three draws of a.png
    assert all(torch.equal(item['gt'], single[0]['gt']) for item in items)
    assert not torch.equal(items[0]['lq'], items[1]['lq']) and not torch.equal(items[1]['lq'], items[2]['lq'])
    assert [item['lq_path'] for item in items] == [str(gt_folder / f'a_draw{k}.png') for k in range(3)]
    assert torch.equal(dataset[4]['lq'], build_dataset(options(dataroot_gt=str(gt_folder), draws=3))[4]['lq'])
    with pytest.raises(DataError, match='draws must be a positive integer'):
        build_dataset(options(dataroot_gt=str(gt_folder), draws=0))
    with pytest.raises(DataError, match='draws applies to validation'):
        build_dataset(options('train', dataroot_gt=str(gt_folder), draws=2))


def test_training_varies_per_draw_and_follows_the_torch_seed(tmp_path, write_images):
    folder = write_images(tmp_path / 'gt', NAMES, shape=(32, 32))  # gt_size 32: the crop is the whole image
    dataset = build_dataset(options('train', dataroot_gt=str(folder)))
    first, second = dataset[0], dataset[0]
    assert torch.equal(first['gt'], second['gt'])
    assert not torch.equal(first['lq'], second['lq'])
    torch.manual_seed(3)
    again = dataset[0]['lq']
    torch.manual_seed(3)
    assert torch.equal(again, dataset[0]['lq'])


def test_no_degradations_gives_clean_pairs(gt_folder):
    item = build_dataset(options(dataroot_gt=str(gt_folder), degradations=[]))[2]
    assert torch.equal(item['lq'], item['gt'])
    item['lq'][0, 0, 0] = -1
    assert item['gt'][0, 0, 0] != -1


def test_mean_std_normalise_both(gt_folder):
    plain = build_dataset(options(dataroot_gt=str(gt_folder)))[0]
    normed = build_dataset(options(dataroot_gt=str(gt_folder), mean=[0.5] * 3, std=[0.5] * 3))[0]
    assert torch.allclose(normed['gt'], plain['gt'] * 2 - 1) and torch.allclose(normed['lq'], plain['lq'] * 2 - 1)


def test_meta_info_file_selects_images(gt_folder, tmp_path):
    meta = tmp_path / 'meta.txt'
    meta.write_text('c.png (32,40,3)\na.png (32,40,3)\n')
    dataset = build_dataset(options(dataroot_gt=str(gt_folder), meta_info_file=str(meta)))
    assert [dataset[i]['gt_path'] for i in range(len(dataset))] == [str(gt_folder / 'c.png'), str(gt_folder / 'a.png')]


def test_lmdb_source_gives_the_same_pairs_as_the_folder(gt_folder, tmp_path):
    assert make_lmdb(['--gt', str(gt_folder), '--out', str(tmp_path / 'db')]) == 0
    from_lmdb = build_dataset(options(dataroot_gt=str(tmp_path / 'db' / 'gt.lmdb'), io_backend={'type': 'lmdb'}))
    from_folder = build_dataset(options(dataroot_gt=str(gt_folder)))
    assert len(from_lmdb) == 3 and from_lmdb[1]['gt_path'] == 'b'
    for i in range(3):
        assert torch.equal(from_lmdb[i]['gt'], from_folder[i]['gt'])
        assert torch.equal(from_lmdb[i]['lq'], from_folder[i]['lq'])


def test_skimage_source_needs_no_files():
    dataset = build_dataset(options(source='skimage', skimage_images=['astronaut', 'camera'], skimage_scale=0.125))
    assert len(dataset) == 2
    astronaut, camera = dataset[0], dataset[1]
    assert astronaut['gt_path'] == 'skimage/astronaut' and astronaut['gt'].shape == (3, 64, 64)
    assert torch.equal(camera['gt'][0], camera['gt'][2])  # greyscale repeated on three channels
    assert not torch.equal(astronaut['gt'][0], astronaut['gt'][2])


def test_training_augmentation_does_not_alter_the_skimage_images():
    dataset = build_dataset(options('train', source='skimage', skimage_images=['chelsea'], skimage_scale=0.125,
                                    gt_size=32, use_hflip=True, use_rot=True, degradations=[]))
    before = dataset.images[0].copy()
    for _ in range(4):
        dataset[0]
    assert (dataset.images[0] == before).all()


@pytest.mark.parametrize('extra, words', [
    ({'dataroot_gt': '/nonexistent/gt'}, "'/nonexistent/gt' does not exist"),
    ({'dataroot_gt': None}, 'dataroot_gt is not set'),
    ({'dataroot_gt': 'x', 'degradations': None}, 'degradations must be a list'),
    ({'source': 'web'}, "source must be 'files' or 'skimage'"),
])
def test_bad_options_are_reported(extra, words):
    with pytest.raises(ValueError) as err:
        build_dataset(options(**extra))
    assert words in str(err.value)


def test_missing_degradations_and_gt_size_are_reported(gt_folder):
    opt = options(dataroot_gt=str(gt_folder))
    del opt['degradations']
    with pytest.raises(DataError, match='degradations'):
        build_dataset(opt)
    opt = options('train', dataroot_gt=str(gt_folder))
    del opt['gt_size']
    with pytest.raises(DataError, match='gt_size'):
        build_dataset(opt)


def test_image_smaller_than_the_patch_is_named(gt_folder):
    dataset = build_dataset(options('train', dataroot_gt=str(gt_folder), gt_size=64))
    with pytest.raises(DataError, match=r'a\.png is 32x40, smaller than gt_size 64'):
        dataset[0]


def test_empty_folder_is_reported(tmp_path):
    (tmp_path / 'gt').mkdir()
    with pytest.raises(DataError, match='is empty'):
        build_dataset(options(dataroot_gt=str(tmp_path / 'gt')))


def test_corrupt_image_is_named_when_read(gt_folder):
    (gt_folder / 'b.png').write_bytes(b'not a png')
    dataset = build_dataset(options(dataroot_gt=str(gt_folder)))
    dataset[0]
    with pytest.raises(DataError, match=r"Cannot decode image '.*b\.png'"):
        dataset[1]


def test_missing_lmdb_key_is_named(gt_folder, tmp_path):
    make_lmdb(['--gt', str(gt_folder), '--out', str(tmp_path)])
    env = lmdb.open(str(tmp_path / 'gt.lmdb'))
    with env.begin(write=True) as txn:
        txn.delete(b'c')
    env.close()
    dataset = build_dataset(options(dataroot_gt=str(tmp_path / 'gt.lmdb'), io_backend={'type': 'lmdb'}))
    with pytest.raises(DataError, match=r"LMDB key missing: '.*gt\.lmdb:c'"):
        dataset[2]


def test_folder_given_as_lmdb_is_reported(gt_folder):
    with pytest.raises(DataError, match='not an LMDB folder'):
        build_dataset(options(dataroot_gt=str(gt_folder), io_backend={'type': 'lmdb'}))


def test_dataloader_workers_and_epochs_draw_different_degradations(tmp_path):
    folder = tmp_path / 'gt'
    folder.mkdir()
    for i in range(4):  # four copies of one image: any difference in LQ comes from the degradation
        cv2.imwrite(str(folder / f'{i}.png'), np.full((32, 32, 3), 128, np.uint8))
    opt = options('train', dataroot_gt=str(folder), degradations=[{'type': 'noise', 'sigma': 20}],
                  batch_size_per_gpu=1, num_worker_per_gpu=2)

    def two_epochs():
        set_random_seed(5)
        loader = build_dataloader(build_dataset(opt), opt, num_gpu=0, seed=5)
        return [batch['lq'][0, 0, 0, :4].tolist() for _ in range(2) for batch in loader]

    draws = two_epochs()
    assert len({tuple(d) for d in draws}) == 8
    assert draws == two_epochs()  # BasicSR's manual seed makes a run reproducible
