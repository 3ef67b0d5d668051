"""slkd_basicsr.complexity: the counts the training log and bench/complexity.py print."""
from torch import nn

from slkd_basicsr.complexity import count_flops, count_params, flop_analysis


def test_flops_are_multiply_adds_and_uncounted_ops_are_named():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GELU()).train()
    flops, uncounted = flop_analysis(net, (3, 8, 8))
    assert flops == 4 * 3 * 9 * 8 * 8  # one per multiply-add of the convolution
    assert uncounted == ['aten::gelu']
    assert count_flops(net, (3, 8, 8)) == flops
    assert net.training  # the mode it came in
    assert count_params(net) == 4 * 3 * 9 + 4
