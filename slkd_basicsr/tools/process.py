"""What an entry point sets up for its process before BasicSR runs: BasicSR itself, the root of its folders, CPU
arithmetic."""
from os import path as osp
from typing import Optional

import torch


def prepare_basicsr() -> None:
    """Adapt BasicSR 1.4.2 to today's stack (:func:`slkd_basicsr.compat.apply`) and add this plugin's behaviour to
    its train and test pipeline (:func:`slkd_basicsr.pipeline.install`), for the whole process, once: what every
    entry point does before BasicSR runs, and what a train script of one's own does (docs/compatibility.md)."""
    from slkd_basicsr import pipeline

    pipeline.install()


def root_path_for(script: str, package: Optional[str], cwd: str) -> str:
    """Root path for ``experiments/`` and ``results/``.

    Run as a console script or ``python -m``, the root is the working directory (the user's project);
    run as ``python slkd_basicsr/tools/train.py`` from a clone, it is the clone's root, as in BasicSR.
    """
    if package in (None, ''):
        return osp.abspath(osp.join(osp.dirname(script), osp.pardir, osp.pardir))
    return osp.abspath(cwd)


def flush_denormals() -> None:
    """Make the CPU treat subnormal floats (magnitude below 1.2e-38) as zero in this process.

    Trained networks can be full of them (the demo's Teacher A: 27% of its weights, 56% of its bottleneck's), and
    their activations then too; CPU arithmetic on subnormals is slow: that teacher's forward pass took 7x longer
    than with them flushed, for identical PSNR/SSIM. GPUs are unaffected.
    """
    torch.set_flush_denormal(True)
