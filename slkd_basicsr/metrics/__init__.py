import importlib
from os import path as osp

from basicsr.utils import scandir

# import every *_metric.py module so that its registry decorators run
_folder = osp.dirname(osp.abspath(__file__))
_filenames = [osp.splitext(osp.basename(v))[0] for v in scandir(_folder) if v.endswith('_metric.py')]
_modules = [importlib.import_module(f'slkd_basicsr.metrics.{name}') for name in _filenames]

from .brisque_metric import brisque_features  # noqa: E402
from .piqe_metric import piqe  # noqa: E402

__all__ = ['brisque_features', 'piqe']
