"""Helpers for tests that compare archs with the official checkpoint layouts in ``tests/archs/spec``."""
import json
from os import path as osp
from typing import Callable, Dict, Tuple

import torch

SPEC_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'spec')


def load_spec(name: str) -> dict:
    """Read ``tests/archs/spec/<name>.json``.

    Returns:
        ``{'arch', 'network_g' (constructor args), 'num_params', 'state_dict' ([key, shape] pairs)}``.
    """
    with open(osp.join(SPEC_DIR, f'{name}.json')) as f:
        return json.load(f)


def spec_state_dict_shapes(spec: dict) -> Dict[str, Tuple[int, ...]]:
    """The spec's state dict as ``{key: shape}``."""
    return {key: tuple(shape) for key, shape in spec['state_dict']}


def network_opt(spec: dict) -> dict:
    """The ``network_g`` options that build the spec's network with ``basicsr.archs.build_network``."""
    return {'type': spec['arch'], **spec['network_g']}


def write_checkpoint(path: str, spec: dict, param_key: str = 'params') -> Dict[str, torch.Tensor]:
    """Write a checkpoint ``{param_key: state_dict}`` in the spec's layout to ``path`` and return the state dict.

    Tensor ``i`` is filled with the value ``i`` so that a key loaded into the wrong place shows; each is an expanded
    scalar, so even a 70M-parameter layout makes a file of a few KB.
    """
    state_dict = {
        key: torch.full((), float(index)).expand(shape)
        for index, (key, shape) in enumerate(spec_state_dict_shapes(spec).items())
    }
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


def assert_keeps_size(net: torch.nn.Module, x: torch.Tensor) -> None:
    """``net(x)`` has the shape of ``x`` and finite values."""
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def assert_global_residual_switch(make: Callable[..., torch.nn.Module], x: torch.Tensor) -> None:
    """``make(global_residual=False)`` has the same parameters and returns exactly the residual."""
    with_residual, without = make(), make(global_residual=False)
    assert state_dict_shapes(with_residual) == state_dict_shapes(without)
    without.load_state_dict(with_residual.state_dict())
    with torch.no_grad():
        out, out_no_res = with_residual(x), without(x)
    assert not torch.allclose(out, out_no_res)
    torch.testing.assert_close(out_no_res + x, out)
