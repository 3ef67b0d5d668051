"""The fixes that run ``basicsr==1.4.2`` on today's torch, torchvision and CPU-only machines (docs/compatibility.md).

Importing this package makes one of them, the alias module :mod:`~slkd_basicsr.compat.torchvision_alias`,
because ``import basicsr`` fails without it. All the others change BasicSR's functions for the whole process
and are made only by :func:`apply`, which ``slkd-train``, ``slkd-test`` and ``slkd-demo`` call before
BasicSR runs; a script of one's own that runs BasicSR's pipeline calls it too::

    from slkd_basicsr import compat
    compat.apply()
"""
from . import torchvision_alias

torchvision_alias.install()  # before the modules below import basicsr

from . import checkpoints, data_io, distributed, options, resume, run_safety, safe_yaml  # noqa: E402
from .checkpoints import CheckpointError, atomic_torch_save, safe_load  # noqa: E402

__all__ = ['apply', 'CheckpointError', 'atomic_torch_save', 'safe_load']

_applied = False


def apply() -> None:
    """Make every fix, once; later calls do nothing."""
    global _applied
    if _applied:
        return
    safe_yaml.install()  # first: every options file BasicSR reads from here on is read as data
    checkpoints.install()
    resume.install()
    distributed.install()  # before options, so that num_gpu is settled when the types are checked
    options.install()
    run_safety.install()  # after options: its parse_options check runs once the types are known to resolve
    data_io.install()
    _applied = True
