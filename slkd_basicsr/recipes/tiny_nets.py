"""The tiny Restormer that the demo, the study, the benchmarks and the tests build their networks from."""
from typing import Any, Dict


def tiny_restormer(**overrides: Any) -> Dict[str, Any]:
    """``network_g``-style options of a tiny Restormer (dim 8, one block per level), with ``overrides`` applied.

    RGB in and out (3 channels, values in [0, 1]); any spatial size divisible by 8. Overridden keys keep their
    place in the dict, new ones (e.g. ``global_residual``) come last; the default lists are new on every call.
    """
    opt = {
        'type': 'Restormer',
        'inp_channels': 3,
        'out_channels': 3,
        'dim': 8,
        'num_blocks': [1, 1, 1, 1],
        'num_refinement_blocks': 1,
        'heads': [1, 1, 2, 2],
        'ffn_expansion_factor': 2.0,
        'bias': False,
        'LayerNorm_type': 'WithBias',
    }
    opt.update(overrides)
    return opt
