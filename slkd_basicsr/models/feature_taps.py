"""Record intermediate features of a network by module name, through forward hooks."""
import difflib
from typing import Dict, List, Sequence

import torch
from torch import nn

from slkd_basicsr.errors import UserError


class TapError(UserError, ValueError):
    """A tap names a module that the network does not have, or no taps are given and none can be defaulted."""


class _AllTapsRecorded(Exception):
    """Raised by the last tap to fire in :meth:`FeatureTaps.run_to_last_tap`, to end the forward pass there."""


def find_module(net: nn.Module, name: str, role: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``named_modules()``) of the bare network ``net``.

    Raises:
        TapError: naming ``role`` (e.g. ``'student tap'``) and the closest existing names.
    """
    if name:
        try:
            return net.get_submodule(name)
        except AttributeError:
            pass
    close = difflib.get_close_matches(name, [n for n, _ in net.named_modules() if n], n=5, cutoff=0.4)
    hint = f' Closest existing modules: {", ".join(close)}.' if close else ''
    raise TapError(f'{role} {name!r} does not exist in {type(net).__name__}.{hint} '
                   'Set or fix distill.encoder_taps / distill.decoder_taps in the options file.')


class FeatureTaps:
    """Forward hooks that keep the outputs of named sub-modules from the latest forward pass.

    The hooks sit on the bare network's sub-modules, so they fire whether the network is called
    directly or through a DDP/DataParallel wrapper. The recorded tensors keep their autograd history
    (the student's features) or none (a teacher run under ``torch.no_grad``). The hooks stay for the
    network's lifetime: SLKDModel taps its networks once, when training starts.

    Args:
        net: The bare network to tap (``BaseModel.get_bare_model`` of a wrapped one).
        names: Sub-module names, in the order :meth:`features` returns them.
        role: Words for error messages, e.g. ``'student tap'``.
    """

    def __init__(self, net: nn.Module, names: Sequence[str], role: str):
        self.names = list(names)
        self.role = role
        self._features: Dict[str, torch.Tensor] = {}
        self._modules = {name: find_module(net, name, role) for name in self.names}
        for name, module in self._modules.items():
            module.register_forward_hook(self._recorder(name))

    def _recorder(self, name: str):

        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TapError(f'tap {name!r} ({type(module).__name__}) returns {type(output).__name__}, '
                               'not a tensor; tap a module that returns a B x C x H x W feature map.')
            self._features[name] = output

        return hook

    def _stop_if_all_recorded(self, module, inputs, output) -> None:
        if len(self._features) == len(self._modules):
            raise _AllTapsRecorded

    def run_to_last_tap(self, net: nn.Module, x: torch.Tensor) -> None:
        """Run ``net`` on ``x`` only as far as the last of its taps: the layers after it are not computed.

        For a network whose output is not used (Teacher B; Teacher A without L_KL): its features are what the
        losses read. ``net`` must be the network these taps are on (or its wrapper). Recorded features are
        cleared first, so that the stop comes when this pass has recorded every tap.
        """
        self.clear()
        # registered now, so that they run after every other hook of the tapped modules (the taps' own included)
        stoppers = [module.register_forward_hook(self._stop_if_all_recorded) for module in self._modules.values()]
        try:
            net(x)
        except _AllTapsRecorded:
            pass
        finally:
            for handle in stoppers:
                handle.remove()

    def features(self) -> List[torch.Tensor]:
        """The tapped outputs of the latest forward pass, each B x C x H x W, in the order of ``names``."""
        missing = [name for name in self.names if name not in self._features]
        if missing:
            raise TapError(f'taps {missing} did not run in the latest forward pass; tap modules on the main path.')
        return [self._features[name] for name in self.names]

    def clear(self) -> None:
        """Drop the recorded tensors (and the graph they hold)."""
        self._features.clear()
