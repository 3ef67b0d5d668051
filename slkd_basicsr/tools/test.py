"""``slkd-test``: BasicSR's ``test_pipeline`` with this plugin registered and ``prepare_basicsr()`` made.

Accepts exactly BasicSR's flags; ``results/`` is written under the root path: the current working
directory, or the clone's root when run as ``python slkd_basicsr/tools/test.py``. ``val.amp: bf16 | fp16`` in the
options file runs the networks under ``torch.autocast`` (as ``val.amp`` does in an SLKD run's validation).
"""
import os
import sys
from os import path as osp
from typing import ContextManager, Optional

if __package__ in (None, ''):  # run as a script from a clone: make the package importable
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir, osp.pardir)))

import torch  # noqa: E402

import slkd_basicsr  # noqa: E402,F401  (first: importing the package registers the plugin, lets basicsr import)

# isort: split
from basicsr.test import test_pipeline  # noqa: E402

from slkd_basicsr.checks.options import options_file_path, read_options_file  # noqa: E402
from slkd_basicsr.models.precision import amp_dtype, autocast, is_amp_value  # noqa: E402
from slkd_basicsr.tools.guard import main_guard  # noqa: E402
from slkd_basicsr.tools.process import flush_denormals, prepare_basicsr, root_path_for  # noqa: E402


def autocast_of_test_options(options_path: Optional[str]) -> ContextManager:
    """The autocast context ``val.amp`` of the options file asks ``slkd-test`` for (a no-op when unset).

    The value is checked, with every other option, when BasicSR's pipeline parses the file; an invalid one here
    means no autocast, so that the check reports it.
    """
    opt = read_options_file(options_path) if options_path else None
    opt = opt if isinstance(opt, dict) else {}
    amp = (opt.get('val') or {}).get('amp')
    num_gpu = opt.get('num_gpu', 0)
    device = torch.device('cuda' if num_gpu != 0 and torch.cuda.is_available() else 'cpu')
    return autocast(device, amp_dtype(amp, 'val.amp', device) if is_amp_value(amp) else None)


def main() -> None:
    prepare_basicsr()
    flush_denormals()
    root_path = root_path_for(__file__, __package__, os.getcwd())

    def run() -> None:
        with autocast_of_test_options(options_file_path()):
            test_pipeline(root_path)

    main_guard('slkd-test', run)


if __name__ == '__main__':
    main()
