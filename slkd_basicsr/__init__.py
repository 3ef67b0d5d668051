"""slkd-basicsr: Simultaneous Learning Knowledge Distillation for BasicSR.

Importing the package adapts BasicSR 1.4.2 to the installed torch/torchvision (see ``compat``) and
registers the archs, losses, metrics, datasets and models it provides in BasicSR's registries.
"""
from . import compat

compat.apply()

from . import archs, data, losses, metrics, models  # noqa: F401,E402  (registration)
from .version import __version__  # noqa: F401,E402
