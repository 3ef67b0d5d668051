"""slkd-basicsr: Simultaneous Learning Knowledge Distillation for BasicSR.

Importing the package registers the archs, losses, metrics, datasets and models it provides in BasicSR's
registries. It changes nothing else in BasicSR but the torchvision alias ``import basicsr`` needs; the entry
points adapt BasicSR 1.4.2 to today's stack (:mod:`slkd_basicsr.compat`) and add the plugin's behaviour to its
pipeline (:mod:`slkd_basicsr.pipeline`) by :func:`slkd_basicsr.tools.process.prepare_basicsr`
(docs/compatibility.md).
"""
from . import compat  # noqa: F401  (first: it provides the torchvision alias that `import basicsr` needs)

# isort: split
from . import archs, data, losses, metrics, models  # noqa: F401  (registration)
from .version import __version__  # noqa: F401
