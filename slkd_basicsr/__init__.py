"""slkd-basicsr: Simultaneous Learning Knowledge Distillation for BasicSR.

Importing the package registers the archs, losses, metrics, datasets and models it provides in BasicSR's
registries. It changes nothing else in BasicSR but the torchvision alias ``import basicsr`` needs; the fixes
for BasicSR 1.4.2 on today's stack are made by :func:`slkd_basicsr.compat.apply` (docs/compatibility.md).
"""
from . import compat  # noqa: F401  (first: it provides the torchvision alias that `import basicsr` needs)

# isort: split
from . import archs, data, losses, metrics, models  # noqa: F401  (registration)
from .version import __version__  # noqa: F401
