"""Networks of a ``network_*`` options section built on the ``meta`` device, and what is read off a built one.

Shared by the options check (options an arch refuses), the early checkpoint and tap checks, the model and the ONNX
export, none of which should build a network on ``meta`` or read its input channels in a way of its own.
"""
from typing import Any, Dict, Optional

import torch
from torch import nn


def build_on_meta(arch_opt: Dict[str, Any]) -> nn.Module:
    """The network of a ``network_*`` options section built on the ``meta`` device (names and shapes, no memory,
    no initialisation); raises what its arch's constructor raises.

    Not ``build_network``: its log line would make BasicSR's logger before the logger has its log file.
    """
    from basicsr.utils.registry import ARCH_REGISTRY

    arch_opt = dict(arch_opt)
    with torch.device('meta'):
        return ARCH_REGISTRY.get(arch_opt.pop('type'))(**arch_opt)


def network_on_meta(arch_opt: Dict[str, Any]) -> Optional[nn.Module]:
    """:func:`build_on_meta`, or None for an arch that cannot be built there (one that computes on values while
    built; the options check has already reported the options an arch refuses)."""
    try:
        return build_on_meta(arch_opt)
    except Exception:  # noqa: BLE001  (such an arch is checked when it is built for real)
        return None


def input_channels(net: nn.Module) -> int:
    """Input channels of a bare network, read off its first convolution (the input projection of every arch here).

    Raises:
        ValueError: the network has no ``Conv2d``.
    """
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f'{type(net).__name__} has no Conv2d to tell its input channels from; for SLKD, set '
                     'distill.probe_channels in the options.')
