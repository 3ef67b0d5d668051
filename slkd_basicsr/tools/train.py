"""``slkd-train``: BasicSR's ``train_pipeline`` with this plugin registered and ``prepare_basicsr()`` made.

Accepts exactly BasicSR's flags (``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``,
``--local_rank``, ``--force_yml``). ``experiments/`` and ``tb_logger/`` are written under the root
path: the current working directory, or the clone's root when run as ``python slkd_basicsr/tools/train.py``.
"""
import os
import sys
from os import path as osp

if __package__ in (None, ''):  # run as a script from a clone: make the package importable
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir, osp.pardir)))

import slkd_basicsr  # noqa: E402,F401  (first: importing the package registers the plugin, lets basicsr import)

# isort: split
from basicsr.train import train_pipeline  # noqa: E402

from slkd_basicsr.tools.guard import main_guard  # noqa: E402
from slkd_basicsr.tools.process import flush_denormals, prepare_basicsr, root_path_for  # noqa: E402


def main() -> None:
    prepare_basicsr()
    flush_denormals()
    root_path = root_path_for(__file__, __package__, os.getcwd())
    main_guard('slkd-train', lambda: train_pipeline(root_path))


if __name__ == '__main__':
    main()
