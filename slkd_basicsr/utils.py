"""Small helpers shared by the entry points."""
from os import path as osp
from typing import ContextManager, Optional

import torch


def root_path_for(script: str, package: Optional[str], cwd: str) -> str:
    """Root path for ``experiments/`` and ``results/``.

    Run as a console script or ``python -m``, the root is the working directory (the user's project);
    run as ``python slkd_basicsr/train.py`` from a clone, it is the clone's root, as in BasicSR.
    """
    if package in (None, ''):
        return osp.abspath(osp.join(osp.dirname(script), osp.pardir))
    return osp.abspath(cwd)


def flush_denormals() -> None:
    """Make the CPU treat subnormal floats (magnitude below 1.2e-38) as zero in this process.

    Trained networks can be full of them (the demo's Teacher A: 27% of its weights, 56% of its bottleneck's), and
    their activations then too; CPU arithmetic on subnormals is slow: that teacher's forward pass took 7x longer
    than with them flushed, for identical PSNR/SSIM. GPUs are unaffected.
    """
    torch.set_flush_denormal(True)


def autocast_of_test_options(options_path: Optional[str]) -> ContextManager:
    """The autocast context ``val.amp`` of the options file asks ``slkd-test`` for (a no-op when unset).

    The value is checked, with every other option, when BasicSR's pipeline parses the file; an invalid one here
    means no autocast, so that the check reports it.
    """
    from slkd_basicsr.models.precision import amp_dtype, autocast, is_amp_value
    from slkd_basicsr.options_check import read_options_file

    opt = read_options_file(options_path) if options_path else None
    opt = opt if isinstance(opt, dict) else {}
    amp = (opt.get('val') or {}).get('amp')
    num_gpu = opt.get('num_gpu', 0)
    device = torch.device('cuda' if num_gpu != 0 and torch.cuda.is_available() else 'cpu')
    return autocast(device, amp_dtype(amp, 'val.amp') if is_amp_value(amp) else None)
