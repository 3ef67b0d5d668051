import pytest
import torch
import torch.nn.functional as F

from slkd_basicsr.archs.restormer_arch import Restormer
from slkd_basicsr.archs.restormer_blocks import ChannelAttention, GatedDconvFeedForward, LayerNorm
from .spec_util import assert_global_residual_switch, assert_keeps_size

TINY = dict(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, heads=[1, 2, 2, 4], ffn_expansion_factor=2)


def tiny(**kwargs) -> Restormer:
    torch.manual_seed(0)
    return Restormer(**{**TINY, **kwargs}).eval()


@pytest.mark.parametrize('layer_norm', ['WithBias', 'BiasFree'])
def test_any_input_size_keeps_size(layer_norm):
    assert_keeps_size(tiny(LayerNorm_type=layer_norm), torch.rand(1, 3, 37, 53))


def test_global_residual_off_predicts_the_image_itself():
    assert_global_residual_switch(tiny, torch.rand(2, 3, 24, 40))


def test_dual_pixel_takes_two_views_and_returns_one_image():
    net = tiny(inp_channels=6, dual_pixel_task=True)
    assert 'skip_conv.weight' in net.state_dict()
    with torch.no_grad():
        out = net(torch.rand(1, 6, 29, 35))
    assert out.shape == (1, 3, 29, 35)


@pytest.mark.parametrize('kwargs, words', [
    (dict(LayerNorm_type='Batch'), 'LayerNorm_type'),
    (dict(heads=[1, 3, 2, 4]), 'heads[1]'),
    (dict(num_blocks=[1, 1, 1]), 'num_blocks'),
    (dict(out_channels=1), 'global_residual'),
])
def test_bad_arguments_name_the_option(kwargs, words):
    with pytest.raises(ValueError, match=words.replace('[', r'\[')):
        tiny(**kwargs)


@pytest.mark.parametrize('layer_norm', ['WithBias', 'BiasFree'])
def test_layer_norm_matches_paper_definition(layer_norm):
    norm = LayerNorm(6, layer_norm)
    torch.nn.init.normal_(norm.body.weight)
    if norm.body.bias is not None:
        torch.nn.init.normal_(norm.body.bias)
    x = torch.randn(2, 6, 5, 7)
    tokens = x.flatten(2).transpose(1, 2)  # B x HW x C, the original works on tokens
    if layer_norm == 'WithBias':
        expected = F.layer_norm(tokens, (6, ), norm.body.weight, norm.body.bias, eps=1e-5)
    else:
        expected = tokens / torch.sqrt(tokens.var(-1, keepdim=True, unbiased=False) + 1e-5) * norm.body.weight
    torch.testing.assert_close(norm(x), expected.transpose(1, 2).reshape(x.shape))


def test_mdta_matches_step_by_step_reference():
    torch.manual_seed(0)
    dim, heads = 8, 2
    attn = ChannelAttention(dim, heads, bias=True)
    torch.nn.init.uniform_(attn.temperature, 0.5, 2)
    x = torch.randn(2, dim, 6, 5)

    q, k, v = attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1)
    split = [t.reshape(2, heads, dim // heads, 30) for t in (q, k, v)]
    q, k, v = split
    q = q / q.norm(dim=-1, keepdim=True)
    k = k / k.norm(dim=-1, keepdim=True)
    logits = torch.einsum('bhcn,bhdn->bhcd', q, k) * attn.temperature
    out = torch.einsum('bhcd,bhdn->bhcn', logits.softmax(-1), v).reshape(2, dim, 6, 5)
    torch.testing.assert_close(attn(x), attn.project_out(out))


def test_gdfn_matches_paper_definition():
    torch.manual_seed(0)
    ffn = GatedDconvFeedForward(8, 2.66, bias=False)
    x = torch.randn(1, 8, 6, 6)
    hidden = int(8 * 2.66)
    branch = ffn.dwconv(ffn.project_in(x))
    gate, content = branch[:, :hidden], branch[:, hidden:]
    expected = ffn.project_out(0.5 * gate * (1 + torch.erf(gate / 2**0.5)) * content)
    torch.testing.assert_close(ffn(x), expected)
