"""Small helpers shared by the entry points."""
from os import path as osp
from typing import Optional


def root_path_for(script: str, package: Optional[str], cwd: str) -> str:
    """Root path for ``experiments/`` and ``results/``.

    Run as a console script or ``python -m``, the root is the working directory (the user's project);
    run as ``python slkd_basicsr/train.py`` from a clone, it is the clone's root, as in BasicSR.
    """
    if package in (None, ''):
        return osp.abspath(osp.join(osp.dirname(script), osp.pardir))
    return osp.abspath(cwd)
