"""Every official checkpoint layout in ``tests/archs/spec``: the arch built from the spec's constructor arguments
has exactly its keys, shapes and parameter count, and a checkpoint in that layout loads strictly through BasicSR."""
import glob
from os import path as osp

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from .spec_util import (SPEC_DIR, load_spec, load_with_basicsr, network_opt, spec_state_dict_shapes, state_dict_shapes,
                        write_checkpoint)

SPECS = sorted(osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(SPEC_DIR, '*.json')))


def test_every_arch_has_a_spec():
    assert {load_spec(name)['arch'] for name in SPECS} == {'Restormer', 'NAFNet', 'DRSformer', 'Uformer'}


@pytest.mark.parametrize('name', SPECS)
def test_spec_layout_and_strict_load(name, tmp_path):
    spec = load_spec(name)
    # on the meta device: shapes only, no tens of millions of random initial values to draw
    with torch.device('meta'):
        net = build_network(network_opt(spec))
    assert type(net) is ARCH_REGISTRY.get(spec['arch'])
    assert state_dict_shapes(net) == spec_state_dict_shapes(spec)
    assert sum(p.numel() for p in net.parameters()) == spec['num_params']

    param_key = spec.get('checkpoint_param_key', 'params')
    path = str(tmp_path / f'{name}.pth')
    written = write_checkpoint(path, spec, param_key=param_key)
    net.to_empty(device='cpu')
    load_with_basicsr(net, path, param_key=param_key)
    # every entry holds its index, integer buffers (Uformer's relative_position_index) included, as integers
    assert all(torch.equal(value.to(written[key].dtype), written[key]) for key, value in net.state_dict().items())
