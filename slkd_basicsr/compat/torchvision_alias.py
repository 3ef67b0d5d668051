"""``import basicsr`` on torchvision 0.17 and later.

BasicSR 1.4.2's ``basicsr.data.degradations`` imports ``rgb_to_grayscale`` from
``torchvision.transforms.functional_tensor``, a module torchvision 0.17 removed, so ``import basicsr`` fails.
:func:`install` registers an alias module with that name holding today's ``rgb_to_grayscale``. It is the one
fix made on import (by this package's ``__init__``), because without it nothing of BasicSR can be imported.
"""
import importlib
import sys
import types

NAME = 'torchvision.transforms.functional_tensor'


def install() -> None:
    """Provide ``torchvision.transforms.functional_tensor`` unless the installed torchvision still has it."""
    try:
        importlib.import_module(NAME)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional
    alias = types.ModuleType(NAME)
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[NAME] = alias
