"""Every arch trains: one backward pass reaches every parameter with finite gradients."""
import pytest
import torch

from slkd_basicsr.archs.drsformer_arch import DRSformer
from slkd_basicsr.archs.nafnet_arch import NAFNet
from slkd_basicsr.archs.restormer_arch import Restormer

TINY_NETS = [
    lambda: Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 2, 4]),
    lambda: Restormer(
        dim=8,
        num_blocks=[1, 1, 1, 1],
        num_refinement_blocks=1,
        heads=[1, 2, 2, 4],
        LayerNorm_type='BiasFree',
        global_residual=False),
    lambda: NAFNet(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]),
    lambda: DRSformer(dim=8, num_blocks=[1, 1, 1, 1], heads=[1, 2, 4, 4], ffn_expansion_factor=2),
]


@pytest.mark.parametrize('make_net', TINY_NETS, ids=['restormer', 'restormer_biasfree', 'nafnet', 'drsformer'])
def test_backward_reaches_every_parameter(make_net):
    torch.manual_seed(0)
    net = make_net()
    x = torch.rand(2, 3, 20, 28)
    loss = (net(x) - x.flip(-1)).abs().mean()
    loss.backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
