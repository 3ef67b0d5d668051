"""Paired data made on the fly: clean images degraded by :mod:`slkd_basicsr.data.degradations`."""
from os import path as osp
from typing import Any, Dict, List

import numpy as np
import torch
from basicsr.data.data_util import paths_from_lmdb
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data as data
from torchvision.transforms.functional import normalize

from .data_checks import DataError, check_folder, check_lmdb, decode, image_names, read_bytes, source_name
from .degradations import apply_degradations, check_degradations
from .skimage_source import load_skimage_images


@DATASET_REGISTRY.register()
class SyntheticDegradationDataset(data.Dataset):
    """Clean images (GT) and their synthetically degraded copies (LQ), like ``PairedImageDataset``.

    Clean images come from one of three sources:

    1. a folder of images (``dataroot_gt``, ``io_backend: {type: disk}``), optionally listed by a
       ``meta_info_file`` (first word of each line: a file name relative to ``dataroot_gt``);
    2. an LMDB (``dataroot_gt: path/gt.lmdb``, ``io_backend: {type: lmdb}``), as built by ``slkd-make-lmdb``;
    3. scikit-image's bundled photos (``source: skimage``; see :mod:`slkd_basicsr.data.skimage_source`).

    In the train phase the GT is randomly cropped to ``gt_size`` and flipped/rotated first, and the
    degradations are applied to that patch with fresh randomness per sample (drawn from torch's RNG, which
    BasicSR seeds and the DataLoader reseeds per worker and epoch), so every epoch sees new degradations.
    In other phases the whole image is degraded with a generator seeded from ``(seed, index)``: the same
    index always gives the same LQ. ``draws: K`` there gives K independently degraded copies of every image
    (K x as many items, ``lq_path`` suffixed ``_draw<k>``): more held-out samples from few photos, so that small
    differences between networks are resolvable.

    ``degradations: []`` gives clean->clean pairs (LQ equals GT), e.g. to train Teacher B on the GT images
    of a dataset without copying them.

    Args:
        opt (dict): Options:
            degradations (list[dict]): Required. Applied in order; see :mod:`~slkd_basicsr.data.degradations`.
            source (str): ``'files'`` (default) or ``'skimage'``.
            dataroot_gt (str): Folder or ``.lmdb`` folder of clean images (source ``files``).
            io_backend (dict): ``{type: disk}`` (default) or ``{type: lmdb}``.
            meta_info_file (str): Optional list of GT file names (disk backend).
            skimage_images (list[str]): Optional subset of photos (source ``skimage``).
            skimage_scale (float): Resize factor for those photos (default 1).
            phase (str): ``'train'`` crops and augments; anything else is deterministic.
            gt_size (int): Training patch size (train phase).
            use_hflip (bool), use_rot (bool): Flips / 90-degree rotations (train phase; default False).
            seed (int): Base seed of the validation degradations (default 0).
            draws (int): Degraded copies per image outside the train phase (default 1).
            mean, std (list[float]): Optional normalisation applied to both images, as in BasicSR.

    Returns (per item):
        ``{'lq': Tensor, 'gt': Tensor, 'lq_path': str, 'gt_path': str}``; tensors 3 x H x W, RGB, float32 in
        [0, 1] (before ``mean``/``std``). Both paths are the GT's path (LMDB: its key; skimage: ``skimage/<name>``).
    """

    def __init__(self, opt: Dict[str, Any]) -> None:
        super().__init__()
        self.opt = opt
        if 'degradations' not in opt:
            raise DataError(f"Dataset {opt.get('name')!r}: set 'degradations' (a list; [] gives clean->clean pairs).")
        self.degradations = check_degradations(opt['degradations'])
        self.phase = opt.get('phase', 'train')
        if self.phase == 'train' and 'gt_size' not in opt:
            raise DataError(f"Dataset {opt.get('name')!r}: the train phase needs gt_size (the patch size).")
        if opt.get('scale', 1) != 1:
            raise DataError(f"Dataset {opt.get('name')!r}: scale must be 1 (LQ and GT have the same size).")
        self.seed = opt.get('seed', 0)
        self.draws = opt.get('draws', 1)
        if not isinstance(self.draws, int) or isinstance(self.draws, bool) or self.draws < 1:
            raise DataError(f"Dataset {opt.get('name')!r}: draws must be a positive integer, got {self.draws!r}.")
        if self.phase == 'train' and self.draws != 1:
            raise DataError(f"Dataset {opt.get('name')!r}: draws applies to validation and test sets; training "
                            'draws new degradations for every sample anyway. Remove it from the train set.')
        self.mean, self.std = opt.get('mean'), opt.get('std')
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.file_client = None
        self.images: List[np.ndarray] = []
        source = opt.get('source', 'files')
        if source == 'skimage':
            named = load_skimage_images(opt.get('skimage_images'), opt.get('skimage_scale', 1.0))
            self.paths = [f'skimage/{name}' for name, _ in named]
            self.images = [img for _, img in named]
        elif source == 'files':
            self.paths = self._file_paths(opt.get('dataroot_gt'))
        else:
            raise DataError(f"Dataset {opt.get('name')!r}: source must be 'files' or 'skimage', got {source!r}.")

    def _file_paths(self, root: str) -> List[str]:
        """GT paths (disk) or keys (lmdb), checked to exist and be non-empty."""
        if self.io_backend_opt['type'] == 'lmdb':
            check_lmdb(root, 'dataroot_gt')
            self.io_backend_opt['db_paths'] = [root]
            self.io_backend_opt['client_keys'] = ['gt']
            return paths_from_lmdb(root)
        check_folder(root, 'dataroot_gt')
        meta_info_file = self.opt.get('meta_info_file')
        if meta_info_file:
            if not osp.isfile(meta_info_file):
                raise DataError(f'meta_info_file {meta_info_file!r} does not exist.')
            with open(meta_info_file) as f:
                names = [line.split()[0] for line in f if line.strip()]
        else:
            names = image_names(root)
        if not names:
            raise DataError(f'dataroot_gt: no images in {root!r} (or in its meta_info_file).')
        return [osp.join(root, name) for name in names]

    def _load_gt(self, index: int) -> np.ndarray:
        """GT image, H x W x 3 BGR float32 in [0, 1], a private copy (augment flips in place)."""
        if self.images:
            return self.images[index].copy()
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        where = source_name(self.file_client, self.paths[index], 'gt')
        return decode(read_bytes(self.file_client.get, self.paths[index], 'gt', where), where)

    def _rng(self, index: int, draw: int) -> np.random.Generator:
        if self.phase == 'train':
            return np.random.default_rng(int(torch.randint(0, 2**62, ())))
        return np.random.default_rng([self.seed, index] if self.draws == 1 else [self.seed, index, draw])

    def __getitem__(self, index: int) -> Dict[str, Any]:
        index, draw = divmod(index, self.draws)
        gt_path = self.paths[index]
        img_gt = self._load_gt(index)
        if self.phase == 'train':
            gt_size = self.opt['gt_size']
            if min(img_gt.shape[:2]) < gt_size:
                raise DataError(f'{gt_path} is {img_gt.shape[0]}x{img_gt.shape[1]}, smaller than gt_size {gt_size}. '
                                'Lower gt_size or remove the image.')
            # BasicSR's random crop, on one image cropped as a pair with itself
            img_gt, _ = paired_random_crop(img_gt, img_gt, gt_size, 1, gt_path)
            img_gt = augment(img_gt, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
            img_gt = np.ascontiguousarray(img_gt)
        img_lq = apply_degradations(img_gt, self.degradations, self._rng(index, draw))
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(img_lq, self.mean, self.std, inplace=True)
            normalize(img_gt, self.mean, self.std, inplace=True)
        lq_path = gt_path if self.draws == 1 else f'{osp.splitext(gt_path)[0]}_draw{draw}{osp.splitext(gt_path)[1]}'
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': lq_path, 'gt_path': gt_path}

    def __len__(self) -> int:
        return len(self.paths) * self.draws
