"""What adapts ``basicsr==1.4.2`` to today's torch, torchvision and CPU-only machines (docs/compatibility.md).

One module per adaptation, each with its ``install()``:

- :mod:`.torchvision_alias`: ``torchvision.transforms.functional_tensor``, removed in torchvision 0.17, which
  ``import basicsr`` needs; made on import of this package, because without it nothing of BasicSR imports;
- :mod:`.safe_yaml`: options files read with a safe loader instead of PyYAML's full ``Loader``;
- :mod:`.checkpoints`: networks read with ``weights_only=True``, checkpoints written atomically;
- :mod:`.resume`: training states found in the experiment, read onto the CPU with ``weights_only=True``
  (``collections.Counter`` allowed), written atomically;
- :mod:`.distributed`: gloo and CPU DDP without CUDA, ``LOCAL_RANK``, the process group's timeout.

:func:`apply` makes all but the first. The plugin's own behaviour in BasicSR's pipeline (the checks before
anything is made, the experiment lock, the plugin's resume, the type-name and data errors) is
:mod:`slkd_basicsr.pipeline`, whose ``install()`` calls :func:`apply` first; the entry points call it through
:func:`slkd_basicsr.tools.process.prepare_basicsr`.
"""
from . import torchvision_alias

torchvision_alias.install()  # before the modules below import basicsr

from . import checkpoints, distributed, resume, safe_yaml  # noqa: E402
from .checkpoints import CheckpointError, atomic_torch_save, safe_load  # noqa: E402

__all__ = ['apply', 'CheckpointError', 'atomic_torch_save', 'safe_load']

_applied = False


def apply() -> None:
    """Make every adaptation, once; later calls do nothing."""
    global _applied
    if _applied:
        return
    safe_yaml.install()
    checkpoints.install()
    resume.install()
    distributed.install()
    _applied = True
