import pytest
import torch

from slkd_basicsr.archs.drsformer_arch import DRSformer, FeatureCompensator, MixedScaleFeedForward, TopKSparseAttention
from .spec_util import assert_global_residual_switch, assert_keeps_size

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], heads=[1, 2, 4, 4], ffn_expansion_factor=2)


def tiny(**kwargs) -> DRSformer:
    torch.manual_seed(0)
    return DRSformer(**{**TINY, **kwargs}).eval()


@pytest.mark.parametrize('layer_norm', ['WithBias', 'BiasFree'])
def test_any_input_size_keeps_size(layer_norm):
    assert_keeps_size(tiny(LayerNorm_type=layer_norm), torch.rand(1, 3, 37, 53))


def test_global_residual_off_predicts_the_image_itself():
    assert_global_residual_switch(tiny, torch.rand(2, 3, 24, 16))


def test_too_many_heads_for_sparse_attention_is_named():
    with pytest.raises(ValueError, match='channels per head'):
        tiny(heads=[8, 2, 4, 4])


def test_top_k_sparse_attention_matches_masked_reference():
    torch.manual_seed(0)
    dim, heads = 12, 2
    attn = TopKSparseAttention(dim, heads, bias=False)
    for param in (attn.temperature, attn.attn1, attn.attn2, attn.attn3, attn.attn4):
        torch.nn.init.uniform_(param, 0.5, 2)
    x = torch.randn(2, dim, 5, 6)

    q, k, v = (t.reshape(2, heads, dim // heads, 30) for t in attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1))
    q = q / q.norm(dim=-1, keepdim=True)
    k = k / k.norm(dim=-1, keepdim=True)
    logits = torch.einsum('bhcn,bhdn->bhcd', q, k) * attn.temperature
    out = 0
    channels = dim // heads
    for keep, weight in zip((channels // 2, channels * 2 // 3, channels * 3 // 4, channels * 4 // 5),
                            (attn.attn1, attn.attn2, attn.attn3, attn.attn4)):
        kth_largest = logits.sort(dim=-1, descending=True).values[..., keep - 1:keep]
        masked = logits.masked_fill(logits < kth_largest, float('-inf'))
        out = out + torch.einsum('bhcd,bhdn->bhcn', masked.softmax(-1), v) * weight
    torch.testing.assert_close(attn(x), attn.project_out(out.reshape(x.shape)))


def test_sparse_attention_ignores_the_smallest_logits():
    """With 2 channels per head every mask keeps only the larger logit, so each row attends to one channel."""
    torch.manual_seed(0)
    attn = TopKSparseAttention(2, 1, bias=False)
    logits = torch.tensor([[[[3.0, -1.0], [0.5, 2.0]]]])
    v = torch.randn(1, 1, 2, 7)
    expected = torch.stack([v[0, 0, 0], v[0, 0, 1]])[None, None] * 0.8
    torch.testing.assert_close(attn.attend(logits, v), expected)


def test_mixed_scale_ffn_matches_paper_definition():
    torch.manual_seed(0)
    ffn = MixedScaleFeedForward(4, 2, bias=False)
    x = torch.randn(1, 4, 6, 6)
    h = 8
    x_in = ffn.project_in(x)
    y3, y5 = torch.relu(ffn.dwconv3x3(x_in)), torch.relu(ffn.dwconv5x5(x_in))
    first = torch.relu(ffn.dwconv3x3_1(torch.cat([y3[:, :h], y5[:, :h]], 1)))
    second = torch.relu(ffn.dwconv5x5_1(torch.cat([y3[:, h:], y5[:, h:]], 1)))
    torch.testing.assert_close(ffn(x), ffn.project_out(torch.cat([first, second], 1)))


def test_feature_compensator_mixes_experts_per_image():
    torch.manual_seed(0)
    mefc = FeatureCompensator(4)
    gate = mefc.layers[0]
    x = torch.randn(3, 4, 9, 7)
    weights = gate(x)
    assert weights.shape == (3, 4, 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    out = mefc(x)
    assert out.shape == x.shape
    assert (out >= 0).all()  # every step ends in a ReLU
    # the gate depends on the image, so one image's output does not change with its batch neighbours
    torch.testing.assert_close(mefc(x[1:2]), out[1:2])
