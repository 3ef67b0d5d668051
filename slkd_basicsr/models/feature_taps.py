"""Record intermediate features of a network by module name, through forward hooks."""
import difflib
from typing import Dict, List, Sequence

import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel


class TapError(ValueError):
    """A tap names a module that the network does not have."""


def bare(net: nn.Module) -> nn.Module:
    """The network inside a DataParallel / DistributedDataParallel wrapper (or the network itself)."""
    return net.module if isinstance(net, (DataParallel, DistributedDataParallel)) else net


def find_module(net: nn.Module, name: str, role: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``named_modules()``) of ``net``.

    Raises:
        TapError: naming ``role`` (e.g. ``'student encoder tap'``) and the closest existing names.
    """
    modules = dict(bare(net).named_modules())
    if name in modules and name != '':
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.4)
    hint = f' Closest existing modules: {", ".join(close)}.' if close else ''
    raise TapError(f'{role} {name!r} does not exist in {type(bare(net)).__name__}.{hint} '
                   'Fix the name in the distill section of the options file.')


class FeatureTaps:
    """Forward hooks that keep the outputs of named sub-modules from the latest forward pass.

    The hooks sit on the bare network's sub-modules, so they fire whether the network is called
    directly or through a DDP/DataParallel wrapper. The recorded tensors keep their autograd history
    (the student's features) or none (a teacher run under ``torch.no_grad``).

    Args:
        net: The network to tap (may be wrapped).
        names: Sub-module names, in the order :meth:`features` returns them.
        role: Words for error messages, e.g. ``'student encoder tap'``.
    """

    def __init__(self, net: nn.Module, names: Sequence[str], role: str):
        self.names = list(names)
        self._features: Dict[str, torch.Tensor] = {}
        self._handles = [find_module(net, name, role).register_forward_hook(self._recorder(name)) for name in names]

    def _recorder(self, name: str):

        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TapError(f'tap {name!r} ({type(module).__name__}) returns {type(output).__name__}, '
                               'not a tensor; tap a module that returns a B x C x H x W feature map.')
            self._features[name] = output

        return hook

    def features(self) -> List[torch.Tensor]:
        """The tapped outputs of the latest forward pass, each B x C x H x W, in the order of ``names``."""
        missing = [name for name in self.names if name not in self._features]
        if missing:
            raise TapError(f'taps {missing} did not run in the latest forward pass; tap modules on the main path.')
        return [self._features[name] for name in self.names]

    def clear(self) -> None:
        """Drop the recorded tensors (and the graph they hold)."""
        self._features.clear()

    def remove(self) -> None:
        """Remove the hooks; the network behaves as if never tapped."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.clear()
