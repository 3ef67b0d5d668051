import importlib
from os import path as osp

from basicsr.utils import scandir

# import every *_arch.py module so that its registry decorators run
_folder = osp.dirname(osp.abspath(__file__))
_filenames = [osp.splitext(osp.basename(v))[0] for v in scandir(_folder) if v.endswith('_arch.py')]
_modules = [importlib.import_module(f'slkd_basicsr.archs.{name}') for name in _filenames]
