"""Pair checks of data_checks: LQ/GT sizes naming both files, gray/colour modes read from the file headers."""
import struct

import cv2
import numpy as np
import pytest
from basicsr.utils import imfrombytes

import slkd_basicsr  # noqa: F401  (registers the plugin)
from slkd_basicsr.data.data_checks import DataError, check_pair_sizes, colour_mismatch, pair_error, stored_channels


def encoded(ext, channels, size=(12, 16), flags=()):
    shape = size if channels == 1 else (*size, channels)
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img, list(flags))
    assert ok
    return buf.tobytes()


def test_same_sizes_pass():
    check_pair_sizes((32, 40, 3), (32, 40, 3), 1, 'lq/a.png', 'gt/a.png')
    check_pair_sizes((16, 20), (32, 40), 2, 'lq/a.png', 'gt/a.png')


def test_a_size_mismatch_names_both_files_and_sizes():
    with pytest.raises(DataError) as err:
        check_pair_sizes((32, 40, 3), (32, 48, 3), 1, 'lq/007.png', 'gt/007.png')
    message = str(err.value)
    assert "LQ 'lq/007.png' is 32x40 and GT 'gt/007.png' is 32x48" in message
    assert 'they must have the same size' in message


def test_a_scale_mismatch_says_the_expected_gt_size():
    with pytest.raises(DataError, match=r"GT 'gt/x.png' is 30x40; the GT must be 2x the LQ \(32x40\)"):
        check_pair_sizes((16, 20, 3), (30, 40, 3), 2, 'lq/x.png', 'gt/x.png')


def test_pair_error_adds_the_pair_to_basicsrs_message():
    from basicsr.data.transforms import paired_random_crop

    gt, lq = np.zeros((40, 40, 3), np.float32), np.zeros((40, 48, 3), np.float32)
    with pytest.raises(ValueError) as crop_err:
        paired_random_crop(gt, lq, 32, 1, 'gt/001.png')
    err = pair_error(crop_err.value, 'lq/001.png', 'gt/001.png')
    assert isinstance(err, DataError)
    assert str(err).startswith(str(crop_err.value))
    assert str(err).endswith("Pair: LQ 'lq/001.png', GT 'gt/001.png'.")


@pytest.mark.parametrize('ext, channels', [('.png', 1), ('.png', 3), ('.png', 4), ('.jpg', 1), ('.jpg', 3),
                                           ('.pgm', 1), ('.ppm', 3)])
def test_stored_channels_reads_the_header(ext, channels):
    assert stored_channels(encoded(ext, channels)) == channels


def test_stored_channels_of_a_progressive_jpeg():
    assert stored_channels(encoded('.jpg', 1, flags=(cv2.IMWRITE_JPEG_PROGRESSIVE, 1))) == 1


@pytest.mark.parametrize('colour_type, channels', [(0, 1), (2, 3), (3, 3), (4, 2), (6, 4)])
def test_stored_channels_of_every_png_colour_type(colour_type, channels):
    ihdr = struct.pack('>IIBBBBB', 4, 4, 8, colour_type, 0, 0, 0)
    header = b'\x89PNG\r\n\x1a\n' + struct.pack('>I', 13) + b'IHDR' + ihdr
    assert stored_channels(header) == channels


@pytest.mark.parametrize('content', [b'', b'BM\x00\x00', b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'not an image'])
def test_stored_channels_is_none_when_unknown(content):
    assert stored_channels(content) is None


def test_a_gray_gt_with_a_colour_lq_is_read_as_colour_and_noticed():
    gray_gt, colour_lq = encoded('.png', 1), encoded('.png', 3)
    read = imfrombytes(gray_gt, float32=True)  # what BasicSR trains on: three equal channels
    assert read.shape[2] == 3 and np.array_equal(read[..., 0], read[..., 2])
    notice = colour_mismatch(stored_channels(colour_lq), stored_channels(gray_gt), 'lq/3.png', 'gt/3.png')
    assert "LQ 'lq/3.png' is stored colour and GT 'gt/3.png' gray" in notice
    assert 'three equal channels' in notice


@pytest.mark.parametrize('lq, gt', [(3, 3), (1, 1), (1, 2), (3, 4), (None, 1), (3, None)])
def test_no_notice_when_the_modes_agree_or_are_unknown(lq, gt):
    assert colour_mismatch(lq, gt, 'lq', 'gt') is None


def test_gray_with_alpha_counts_as_gray():
    assert 'is stored gray and GT' in colour_mismatch(2, 3, 'lq', 'gt')
