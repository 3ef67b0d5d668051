"""Checks that turn bad data into one clear error naming the folder, file or LMDB key, and what to do.

Used by this package's datasets and by :mod:`slkd_basicsr.compat.data_io` (which gives BasicSR's own
datasets the same errors) and by ``slkd-make-lmdb``.
"""
import os
from os import path as osp
from typing import Any, Callable, Iterable, List, Optional

import numpy as np
from basicsr.utils import imfrombytes

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class DataError(ValueError):
    """A dataset folder, file or LMDB entry is missing, empty, unpaired or unreadable."""


def check_folder(folder: Optional[str], option: str) -> None:
    """Raise :class:`DataError` unless ``folder`` is an existing folder with at least one file.

    Args:
        folder: Path given in the options file.
        option: The option name, e.g. ``'dataroot_gt'``, for the message.
    """
    if not folder:
        raise DataError(f'{option} is not set: give the folder (or .lmdb folder) of the images.')
    if not osp.isdir(folder):
        raise DataError(f'{option}: folder {folder!r} does not exist. Check the path in the options file.')
    if not any(entry.is_file() for entry in os.scandir(folder)):
        raise DataError(f'{option}: folder {folder!r} is empty. Put the images there or fix the path.')


def check_lmdb(folder: Optional[str], option: str) -> None:
    """Raise :class:`DataError` unless ``folder`` looks like an LMDB made by BasicSR or ``slkd-make-lmdb``.

    Such a folder ends with ``.lmdb`` and holds ``data.mdb`` and a non-empty ``meta_info.txt``.
    """
    check_folder(folder, option)
    hint = 'Build it with slkd-make-lmdb (or BasicSR\'s create_lmdb.py), or set io_backend: {type: disk}.'
    if not folder.rstrip('/').endswith('.lmdb'):
        raise DataError(f'{option}: {folder!r} is not an LMDB folder (its name must end with .lmdb). {hint}')
    for name in ('data.mdb', 'meta_info.txt'):
        if not osp.isfile(osp.join(folder, name)):
            raise DataError(f'{option}: LMDB {folder!r} has no {name}. {hint}')
    if osp.getsize(osp.join(folder, 'meta_info.txt')) == 0:
        raise DataError(f'{option}: LMDB {folder!r} has an empty meta_info.txt (no images). {hint}')


def image_names(folder: str) -> List[str]:
    """Sorted names of the image files directly inside ``folder`` (by extension, case-insensitive)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS))


def check_pairs(lq_names: Iterable[str], gt_names: Iterable[str], lq_where: str, gt_where: str) -> None:
    """Raise :class:`DataError` listing every LQ name without a GT partner and vice versa.

    Args:
        lq_names: LQ file names (or keys), already mapped to the names their GT partners must have.
        gt_names: GT file names (or keys).
        lq_where: Where the LQ names come from (folder path), for the message.
        gt_where: Where the GT names come from.
    """
    lq_set, gt_set = set(lq_names), set(gt_names)
    lq_only, gt_only = sorted(lq_set - gt_set), sorted(gt_set - lq_set)
    if lq_only or gt_only:
        lines = [f'LQ and GT images do not pair up ({lq_where!r} vs {gt_where!r}); names must match.']
        if lq_only:
            lines.append(f'  LQ without GT ({len(lq_only)}): {", ".join(lq_only[:20])}')
        if gt_only:
            lines.append(f'  GT without LQ ({len(gt_only)}): {", ".join(gt_only[:20])}')
        raise DataError('\n'.join(lines))


def decode(content: Optional[bytes], name: str, flag: str = 'color', float32: bool = True) -> np.ndarray:
    """``basicsr.utils.imfrombytes`` that raises :class:`DataError` naming ``name`` when decoding fails.

    Returns:
        H x W x 3 BGR image (``flag='color'``), float32 in [0, 1] when ``float32`` else uint8.
    """
    img = imfrombytes(content, flag=flag, float32=False) if content else None
    if img is None:
        raise DataError(f'Cannot decode image {name!r}: the file is empty, corrupt or not an image. '
                        'Replace or remove it.')
    return img.astype(np.float32) / 255. if float32 else img


def source_name(file_client: Any, path: str, client_key: str = 'default') -> str:
    """Where ``file_client.get(path, client_key)`` reads from: the file path, or ``<lmdb folder>:<key>``."""
    if file_client.backend != 'lmdb':
        return str(path)
    db_paths = dict(zip(file_client.client._client, file_client.client.db_paths))
    return f'{db_paths.get(client_key, client_key)}:{path}'


def read_bytes(get: Callable[[str, str], Optional[bytes]], path: str, client_key: str, where: str) -> bytes:
    """Call ``get(path, client_key)`` (a ``FileClient.get``) and raise :class:`DataError` naming ``where``
    for a missing file or LMDB key (BasicSR's own ``get`` returns None for a missing key)."""
    try:
        content = get(path, client_key)
    except FileNotFoundError as err:
        raise DataError(f'Image file {where!r} not found. Check dataroot_* and meta_info_file.') from err
    if content is None:
        raise DataError(f'LMDB key missing: {where!r} is listed in meta_info.txt but not stored in data.mdb. '
                        'Rebuild the LMDB with slkd-make-lmdb.')
    return content
