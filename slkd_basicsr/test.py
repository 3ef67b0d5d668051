"""``slkd-test``: BasicSR's ``test_pipeline`` with this plugin registered and ``compat.apply()`` made.

Accepts exactly BasicSR's flags; ``results/`` is written under the root path: the current working
directory, or the clone's root when run as ``python slkd_basicsr/test.py``. ``val.amp: bf16 | fp16`` in the
options file runs the networks under ``torch.autocast`` (as ``val.amp`` does in an SLKD run's validation).
"""
import os
import sys
from os import path as osp

if __package__ in (None, ''):  # run as a script from a clone: make the package importable
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))

from slkd_basicsr import compat  # noqa: E402  (first: importing the package registers the plugin, lets basicsr import)

# isort: split
from basicsr.test import test_pipeline  # noqa: E402

from slkd_basicsr.utils import autocast_of_test_options, flush_denormals, root_path_for  # noqa: E402


def main() -> None:
    compat.apply()
    flush_denormals()
    # the project's errors and common OS faults: one message, exit status 2, no traceback (compat/run_safety.py)
    root_path = root_path_for(__file__, __package__, os.getcwd())

    def run() -> None:
        with autocast_of_test_options(compat.run_safety.options_file_path()):
            test_pipeline(root_path)

    compat.run_safety.main_guard('slkd-test', run)


if __name__ == '__main__':
    main()
