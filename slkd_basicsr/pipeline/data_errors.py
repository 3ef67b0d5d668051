"""Clear data errors for BasicSR's own datasets (``PairedImageDataset`` and friends).

BasicSR 1.4.2 reports bad data late and vaguely: a corrupt file makes ``imfrombytes`` return None and the
crash comes later as ``'NoneType' object has no attribute 'astype'``; a missing LMDB key does the same; an
empty folder gives a zero-length dataset and a ``ZeroDivisionError`` in the training loop; unpaired folders
stop at the first ``assert``. :func:`install` wraps four BasicSR functions so that each of these raises
:class:`~slkd_basicsr.data.data_checks.DataError` (a ``ValueError``) naming the file, key or folder:

- ``FileClient.get``: a missing file or LMDB key; the returned bytes remember where they came from;
- ``imfrombytes``: bytes that do not decode, named by the file or key they were read from;
- ``paired_paths_from_folder``: missing or empty folders, and every unpaired name (not just the first);
- ``paired_paths_from_lmdb``: a folder that is not an LMDB, and every key present on one side only;

and ``PairedImageDataset.__getitem__``, so that an LQ/GT pair whose sizes do not match names both files (BasicSR's
crop names at most the GT, validation none), and a pair stored one gray and one colour is said once per dataset
in the log (BasicSR reads both as three channels, so the network would learn to add or remove colour).

Valid data goes through unchanged (the same arrays and path lists as before).
"""
import logging
import sys
from functools import partial
from os import path as osp
from typing import Any, Callable, Dict, List

from basicsr.data import data_util
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils import file_client, img_util, scandir

from ..data.data_checks import (DataError, check_folder, check_lmdb, check_pair_sizes, check_pairs, colour_mismatch,
                                decode, pair_error, read_bytes, source_name, stored_channels)

_ORIGINAL_GET = file_client.FileClient.get
_ORIGINAL_IMFROMBYTES = img_util.imfrombytes
_ORIGINAL_PAIRED_FOLDER = data_util.paired_paths_from_folder
_ORIGINAL_PAIRED_LMDB = data_util.paired_paths_from_lmdb
_ORIGINAL_PAIRED_GETITEM = PairedImageDataset.__getitem__

# The last images FileClient.get read in this process (a dataset item reads its GT, then its LQ), for the pair checks
_RECENT: List['SourcedBytes'] = []


class SourcedBytes(bytes):
    """Image bytes that remember their file path or LMDB key (``source``) for error messages."""
    source: str


def checked_get(self: file_client.FileClient, filepath: Any, client_key: str = 'default') -> SourcedBytes:
    """``FileClient.get`` raising :class:`DataError` for a missing file or LMDB key."""
    where = source_name(self, filepath, client_key)
    named = SourcedBytes(read_bytes(partial(_ORIGINAL_GET, self), filepath, client_key, where))
    named.source = where
    _RECENT.append(named)
    del _RECENT[:-2]
    return named


def checked_imfrombytes(content: bytes, flag: str = 'color', float32: bool = False) -> Any:
    """``imfrombytes`` raising :class:`DataError` naming the file or key when the bytes do not decode."""
    return decode(content, getattr(content, 'source', '<bytes not read by FileClient>'), flag, float32)


def checked_paired_paths_from_folder(folders: List[str], keys: List[str], filename_tmpl: str) -> List[Dict[str, str]]:
    """``paired_paths_from_folder`` after checking both folders and that every file has a partner."""
    (input_folder, gt_folder), (input_key, gt_key) = folders, keys
    check_folder(input_folder, f'dataroot_{input_key}')
    check_folder(gt_folder, f'dataroot_{gt_key}')
    expected = [f'{filename_tmpl.format(osp.splitext(n)[0])}{osp.splitext(n)[1]}' for n in scandir(gt_folder)]
    check_pairs(scandir(input_folder), expected, input_folder, gt_folder)
    return _ORIGINAL_PAIRED_FOLDER(folders, keys, filename_tmpl)


def checked_paired_paths_from_lmdb(folders: List[str], keys: List[str]) -> List[Dict[str, str]]:
    """``paired_paths_from_lmdb`` after checking both LMDBs and that their keys match."""
    (input_folder, gt_folder), (input_key, gt_key) = folders, keys
    check_lmdb(input_folder, f'dataroot_{input_key}')
    check_lmdb(gt_folder, f'dataroot_{gt_key}')
    check_pairs(data_util.paths_from_lmdb(input_folder), data_util.paths_from_lmdb(gt_folder), input_folder, gt_folder)
    return _ORIGINAL_PAIRED_LMDB(folders, keys)


def _shape(content: bytes) -> tuple:
    return _ORIGINAL_IMFROMBYTES(content, float32=False).shape


def checked_paired_getitem(self: PairedImageDataset, index: int) -> Dict[str, Any]:
    """``PairedImageDataset.__getitem__``: a size mismatch names the pair; a gray/colour pair is said once."""
    del _RECENT[:]
    paths = self.paths[index]
    try:
        item = _ORIGINAL_PAIRED_GETITEM(self, index)
    except DataError:
        raise
    except ValueError as err:  # paired_random_crop: scale mismatch (its message is a tuple) or a too small LQ
        gt_bytes, lq_bytes = (_RECENT + [None, None])[:2]
        if gt_bytes is not None and lq_bytes is not None:
            check_pair_sizes(_shape(lq_bytes), _shape(gt_bytes), self.opt['scale'], lq_bytes.source, gt_bytes.source)
        raise pair_error(DataError(''.join(map(str, err.args))), paths['lq_path'], paths['gt_path']) from err
    # validation crops a larger GT to the LQ's size times scale (BasicSR's choice, for SR benchmarks); smaller fails
    lq_hw, gt_hw = tuple(item['lq'].shape[-2:]), tuple(item['gt'].shape[-2:])
    check_pair_sizes(lq_hw, gt_hw, self.opt['scale'], str(item['lq_path']), str(item['gt_path']))
    if len(_RECENT) == 2 and not getattr(self, '_slkd_colour_said', False):
        gt_bytes, lq_bytes = _RECENT
        notice = colour_mismatch(stored_channels(lq_bytes), stored_channels(gt_bytes), lq_bytes.source,
                                 gt_bytes.source)
        if notice:
            self._slkd_colour_said = True
            logging.getLogger('basicsr').warning(f"Dataset {self.opt.get('name')!r}: {notice}")
    return item


def _rebind(original: Callable, replacement: Callable) -> None:
    """Replace ``original`` in every loaded ``basicsr`` module that imported it by name."""
    for name, module in list(sys.modules.items()):
        if name.split('.')[0] == 'basicsr' and getattr(module, original.__name__, None) is original:
            setattr(module, original.__name__, replacement)


def install() -> None:
    """Install the checked versions in ``FileClient`` and in every loaded ``basicsr`` module."""
    file_client.FileClient.get = checked_get
    PairedImageDataset.__getitem__ = checked_paired_getitem
    _rebind(_ORIGINAL_IMFROMBYTES, checked_imfrombytes)
    _rebind(_ORIGINAL_PAIRED_FOLDER, checked_paired_paths_from_folder)
    _rebind(_ORIGINAL_PAIRED_LMDB, checked_paired_paths_from_lmdb)
