"""``slkd-make-lmdb``: build BasicSR-readable LMDBs from image folders, checking every image first.

Usage::

    slkd-make-lmdb --lq datasets/Rain1400/input --gt datasets/Rain1400/target --out datasets/Rain1400
    # -> datasets/Rain1400/lq.lmdb and datasets/Rain1400/gt.lmdb (each with meta_info.txt)
    slkd-make-lmdb --gt datasets/DIV2K/HR --out datasets/DIV2K      # one folder -> gt.lmdb

Each image is stored PNG-encoded under its file name without extension (BasicSR's layout, written by
``basicsr.utils.lmdb_util.make_lmdb_from_imgs``). Before anything is written, every image is decoded and,
with both ``--lq`` and ``--gt``, the names are matched; all problems are listed by file name and the tool
exits with status 2, as for an OS fault (``slkd-make-lmdb: <message>``, no traceback). Each LMDB is written
to a temporary folder next to its target and renamed at the end, so a failure never leaves a half-written LMDB
behind.
"""
import argparse
import os
import shutil
import sys
import uuid
from os import path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from tqdm import tqdm

from slkd_basicsr.data.data_checks import DataError, check_folder, check_pairs, image_names
from slkd_basicsr.tools.guard import main_guard


def scan_folder(folder: str, option: str) -> Tuple[List[str], List[str], int]:
    """Decode every image of ``folder`` (with a progress bar).

    Returns:
        ``(names, problems, raw_bytes)``: the image file names (sorted), one message per unusable file
        (unreadable, a key BasicSR's LMDB reader cannot hold, or two files with the same key), and the
        decoded size of all images in bytes.
    """
    check_folder(folder, option)
    names = image_names(folder)
    if not names:
        raise DataError(f'{option}: no image files in {folder!r}.')
    problems, raw_bytes, seen = [], 0, {}
    for name in tqdm(names, desc=f'Check {option}', unit='image'):
        key = osp.splitext(name)[0]
        if '.' in key or not key.isascii() or key != key.strip() or ' ' in key:
            problems.append(f'{osp.join(folder, name)}: LMDB keys must be ASCII without dots or spaces; rename it.')
        if key in seen:
            problems.append(f'{osp.join(folder, name)}: same key {key!r} as {seen[key]}; keep one of them.')
        seen[key] = name
        img = cv2.imread(osp.join(folder, name), cv2.IMREAD_UNCHANGED)
        if img is None:
            problems.append(f'{osp.join(folder, name)}: cannot be read (corrupt or not an image).')
        else:
            raw_bytes += img.nbytes
    return names, problems, raw_bytes


def keys_of(names: Sequence[str]) -> List[str]:
    return [osp.splitext(name)[0] for name in names]


def write_lmdb(folder: str, names: Sequence[str], target: str, raw_bytes: int, compress_level: int) -> str:
    """Write ``names`` from ``folder`` into a temporary LMDB next to ``target``; return its path.

    The map size is 1.5 x the decoded size plus a page per image: PNG never grows much beyond raw pixels.
    """
    tmp = osp.join(osp.dirname(target), f'.tmp-{uuid.uuid4().hex[:8]}-{osp.basename(target)}')
    map_size = int(raw_bytes * 1.5) + 8192 * len(names) + 2**20
    try:
        make_lmdb_from_imgs(folder, tmp, list(names), keys_of(names), compress_level=compress_level,
                            map_size=map_size)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='slkd-make-lmdb',
        description='Build BasicSR LMDBs (<out>/lq.lmdb, <out>/gt.lmdb) from image folders. Images are checked '
        'first; unreadable or unpaired files are listed and nothing is written.')
    parser.add_argument('--lq', help='folder of degraded (input) images -> <out>/lq.lmdb')
    parser.add_argument('--gt', help='folder of ground-truth images -> <out>/gt.lmdb')
    parser.add_argument('--out', required=True, help='folder that receives the .lmdb folders (created if needed)')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression level inside the LMDB (default 1: fast to read)')
    args = parser.parse_args(argv)
    if not (args.lq or args.gt):
        parser.error('give --lq, --gt or both')
    return args


def check_inputs(out: str, folders: Dict[str, str],
                 targets: Dict[str, str]) -> Dict[str, Tuple[List[str], List[str], int]]:
    """Everything checked before anything is written: ``--out`` and the target LMDBs, every image decoded, the names
    paired.

    Returns:
        :func:`scan_folder` of each of ``folders`` (by ``lq`` / ``gt``).

    Raises:
        DataError: what is wrong, every unusable image listed, ending with 'Nothing was written.'
    """
    try:
        if osp.exists(out) and not osp.isdir(out):
            raise DataError(f'--out {out!r} is a file, not a folder; give a folder (it is created if needed).')
        existing = [t for t in targets.values() if osp.exists(t)]
        if existing:
            raise DataError(f'{", ".join(existing)} already exist(s); remove it or choose another --out.')
        scans = {k: scan_folder(folder, f'--{k}') for k, folder in folders.items()}
        problems = [p for _, found, _ in scans.values() for p in found]
        if len(scans) == 2:
            try:
                check_pairs(keys_of(scans['lq'][0]), keys_of(scans['gt'][0]), folders['lq'], folders['gt'])
            except DataError as err:
                problems.append(str(err))
        if problems:
            raise DataError('\n'.join(problems))
    except DataError as err:
        message = str(err)  # one problem: one line; a list of them: a line of its own after the list
        raise DataError(message + ('\n' if '\n' in message else ' ') + 'Nothing was written.') from None
    return scans


def make_lmdbs(args: argparse.Namespace) -> int:
    """Check the inputs (:func:`check_inputs`), then write each LMDB through a temporary folder; returns 0."""
    folders: Dict[str, str] = {k: v for k, v in (('lq', args.lq), ('gt', args.gt)) if v}
    targets = {k: osp.join(args.out, f'{k}.lmdb') for k in folders}
    scans = check_inputs(args.out, folders, targets)
    os.makedirs(args.out, exist_ok=True)
    written: Dict[str, str] = {}
    try:
        for k, (names, _, raw_bytes) in scans.items():
            written[k] = write_lmdb(folders[k], names, targets[k], raw_bytes, args.compress_level)
        for k, tmp in written.items():
            os.replace(tmp, targets[k])
    except BaseException:
        for tmp in written.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    print('Wrote ' + ', '.join(targets.values()))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``slkd-make-lmdb``; returns 0 on success. Bad input or data (nothing is written then) and the
    common OS faults (a missing path, permission denied, a loop of symbolic links, a full disk) end it with one
    message, ``slkd-make-lmdb: <message>``, and exit status 2, as the other entry points
    (:func:`~slkd_basicsr.tools.guard.main_guard`)."""
    args = parse_args(argv)
    return main_guard('slkd-make-lmdb', lambda: make_lmdbs(args))


if __name__ == '__main__':
    sys.exit(main())
