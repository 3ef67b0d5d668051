"""Helpers for tests that compare archs with the official checkpoint layouts in ``tests/data/spec``."""
import json
from os import path as osp
from typing import Dict, Tuple

import torch

SPEC_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'spec')


def load_spec(name: str) -> dict:
    """Read ``tests/data/spec/<name>.json``: ``arch``, ``network_g`` (constructor args), ``num_params``, ``state_dict``."""
    with open(osp.join(SPEC_DIR, f'{name}.json')) as f:
        return json.load(f)


def spec_state_dict_shapes(spec: dict) -> Dict[str, Tuple[int, ...]]:
    """The spec's state dict as ``{key: shape}``."""
    return {key: tuple(shape) for key, shape in spec['state_dict']}


def network_opt(spec: dict) -> dict:
    """The ``network_g`` options that build the spec's network with ``basicsr.archs.build_network``."""
    return {'type': spec['arch'], **spec['network_g']}


def write_checkpoint(path: str, spec: dict, param_key: str = 'params', seed: int = 0) -> Dict[str, torch.Tensor]:
    """Write random tensors in the spec's layout as ``{param_key: state_dict}`` to ``path``; return the state dict."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {key: torch.randn(shape, generator=generator) for key, shape in spec_state_dict_shapes(spec).items()}
    torch.save({param_key: state_dict}, path)
    return state_dict


def state_dict_shapes(net: torch.nn.Module) -> Dict[str, Tuple[int, ...]]:
    """A network's state dict as ``{key: shape}``."""
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def load_with_basicsr(net: torch.nn.Module, path: str, param_key: str = 'params') -> None:
    """Load ``path`` into ``net`` strictly through BasicSR's ``BaseModel.load_network`` (as ``strict_load_g: true``)."""
    from basicsr.models.base_model import BaseModel

    # load_network only needs the model for get_bare_model, so skip BaseModel.__init__ and its options
    BaseModel.load_network(BaseModel.__new__(BaseModel), net, path, True, param_key)
