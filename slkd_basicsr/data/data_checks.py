"""Checks that turn bad data into one clear error naming the folder, file or LMDB key, and what to do.

Used by this package's datasets and by :mod:`slkd_basicsr.pipeline.data_errors` (which gives BasicSR's own
datasets the same errors) and by ``slkd-make-lmdb``.
"""
import os
import struct
from os import path as osp
from typing import Any, Callable, Iterable, List, Optional, Sequence

import numpy as np
from basicsr.utils import imfrombytes

from slkd_basicsr.errors import UserError

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class DataError(UserError, ValueError):
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


def check_pair_sizes(lq_shape: Sequence[int], gt_shape: Sequence[int], scale: int, lq_name: str, gt_name: str) -> None:
    """Raise :class:`DataError` naming both files unless the GT is ``scale`` times the LQ in height and width.

    Args:
        lq_shape, gt_shape: ``(H, W)`` or ``(H, W, C)`` shapes of the LQ and GT images (numpy HWC arrays); for
            C x H x W tensors pass ``tensor.shape[-2:]``.
        scale: The options' ``scale`` (1 for restoration).
        lq_name, gt_name: File paths or LMDB keys, for the message.
    """
    (lq_h, lq_w), (gt_h, gt_w) = tuple(lq_shape[:2]), tuple(gt_shape[:2])
    if (gt_h, gt_w) == (lq_h * scale, lq_w * scale):
        return
    need = f'the GT must be {scale}x the LQ ({lq_h * scale}x{lq_w * scale})' if scale != 1 else \
        'they must have the same size'
    raise DataError(f'LQ/GT size mismatch: LQ {lq_name!r} is {lq_h}x{lq_w} and GT {gt_name!r} is {gt_h}x{gt_w}; '
                    f'{need}. Resize or remove the pair.')


def pair_error(err: Exception, lq_name: str, gt_name: str) -> DataError:
    """A :class:`DataError` with ``err``'s message and the pair it happened on (BasicSR's crop names no LQ file)."""
    return DataError(f'{err} Pair: LQ {lq_name!r}, GT {gt_name!r}.')


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# PNG colour type -> channels as stored (0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (those without DHT/JPG/DAC meaning): they carry the component count
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def stored_channels(content: bytes) -> Optional[int]:
    """Channels an image file stores, read from its header without decoding (PNG, JPEG, PGM/PPM).

    BasicSR reads every image with ``flag='color'``, which turns a gray file into three equal channels; this
    tells what the file itself holds.

    Returns:
        1 (gray), 2 (gray + alpha), 3 (colour) or 4 (colour + alpha); None for other formats or unreadable headers.
    """
    if content[:8] == _PNG_SIGNATURE and content[12:16] == b'IHDR' and len(content) > 25:
        return _PNG_CHANNELS.get(content[25])
    if content[:2] in (b'P2', b'P5'):
        return 1
    if content[:2] in (b'P3', b'P6'):
        return 3
    if content[:2] == b'\xff\xd8':
        return _jpeg_channels(content)
    return None


def _jpeg_channels(content: bytes) -> Optional[int]:
    pos = 2
    while pos + 4 <= len(content):
        if content[pos] != 0xFF:
            return None
        marker = content[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before them
            return None
        length = struct.unpack('>H', content[pos + 2:pos + 4])[0]
        if marker in _JPEG_SOF:
            return content[pos + 9] if pos + 9 < len(content) else None
        pos += 2 + length
    return None


def colour_mismatch(lq_channels: Optional[int], gt_channels: Optional[int], lq_name: str,
                    gt_name: str) -> Optional[str]:
    """The notice to log once when one image of a pair is stored gray and the other colour, else None.

    Both are read as three channels (the gray one as three equal channels), so such a pair trains the network to
    add or remove colour. Channel counts come from :func:`stored_channels`; None (unknown format) never mismatches.
    """
    if lq_channels is None or gt_channels is None or (lq_channels <= 2) == (gt_channels <= 2):
        return None

    def mode(channels: int) -> str:
        return 'gray' if channels <= 2 else 'colour'

    return (f'LQ {lq_name!r} is stored {mode(lq_channels)} and GT {gt_name!r} {mode(gt_channels)}: the gray one is '
            'read as three equal channels, so the network learns to change the colour. Store both images of a pair '
            'in the same colour mode if that is not intended (said once per dataset; other pairs may differ too).')
