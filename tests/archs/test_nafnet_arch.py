import pytest
import torch

from slkd_basicsr.archs.nafnet_arch import NAFBlock, NAFNet
from .spec_util import assert_global_residual_switch, assert_keeps_size

TINY = dict(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])


def tiny(**kwargs) -> NAFNet:
    torch.manual_seed(0)
    net = NAFNet(**{**TINY, **kwargs}).eval()
    # beta and gamma start at zero (every block the identity); randomise them so the blocks matter
    for name, param in net.named_parameters():
        if name.endswith(('beta', 'gamma')):
            torch.nn.init.normal_(param)
    return net


@pytest.mark.parametrize('size', [(37, 53), (32, 32), (3, 5)])
def test_any_input_size_keeps_size(size):
    assert_keeps_size(tiny(), torch.rand(1, 3, *size))


def test_global_residual_off_predicts_the_image_itself():
    assert_global_residual_switch(tiny, torch.rand(2, 3, 20, 28))


def test_mismatched_levels_name_the_options():
    with pytest.raises(ValueError, match='enc_blk_nums'):
        NAFNet(enc_blk_nums=[1, 1], dec_blk_nums=[1])


def test_nafblock_matches_paper_equations():
    torch.manual_seed(0)
    c = 6
    block = NAFBlock(c)
    for param in (block.beta, block.gamma, block.norm1.weight, block.norm2.bias):
        torch.nn.init.normal_(param)
    x = torch.randn(2, c, 5, 7)

    def layer_norm(t, norm):
        mean = t.mean(1, keepdim=True)
        var = ((t - mean)**2).mean(1, keepdim=True)
        return (t - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)

    t = block.conv2(block.conv1(layer_norm(x, block.norm1)))
    t = t[:, :c] * t[:, c:]  # SimpleGate
    t = t * block.sca[1](t.mean(dim=(2, 3), keepdim=True))  # Simplified Channel Attention
    y = x + block.conv3(t) * block.beta
    t = block.conv4(layer_norm(y, block.norm2))
    expected = y + block.conv5(t[:, :c] * t[:, c:]) * block.gamma
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize('levels', [2, 3, 4])
def test_default_taps_follow_the_depth(levels):
    net = tiny(enc_blk_nums=[1] * levels, dec_blk_nums=[1] * levels)
    taps = net.default_taps
    assert taps == {'encoder': [f'encoders.{i}' for i in range(levels)],
                    'decoder': [f'decoders.{i}' for i in range(levels)]}
    sides = {}
    for name in taps['encoder'] + taps['decoder']:
        net.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: sides.__setitem__(name, tuple(out.shape[-2:])))
    with torch.no_grad():
        net(torch.rand(1, 3, 32, 32))
    # encoder level i at 1/2**i of the input side, decoders from the deepest level back to full size
    assert [sides[name] for name in taps['encoder']] == [(32 >> i, 32 >> i) for i in range(levels)]
    assert [sides[name] for name in taps['decoder']] == [(32 >> i, 32 >> i) for i in reversed(range(levels))]
