import pytest
import torch
import torch.nn.functional as F
from basicsr.models import build_model

from slkd_basicsr.archs.uformer_arch import LeWinTransformerBlock, Uformer, shift_window_mask
from .spec_util import assert_global_residual_switch, assert_keeps_size

TINY = dict(embed_dim=8, depths=[1] * 9, win_size=4, modulator=True)


def tiny(**kwargs) -> Uformer:
    torch.manual_seed(0)
    return Uformer(**{**TINY, **kwargs}).eval()


def test_multi_gpu_checkpoint_loads_through_model_options(tmp_path):
    """Official checkpoints saved from nn.DataParallel prefix every key with 'module.'."""
    weights = tiny().state_dict()
    weights = {key: torch.randn_like(value) if value.is_floating_point() else value for key, value in weights.items()}
    path = str(tmp_path / 'model_best.pth')
    torch.save({'epoch': 250, 'state_dict': {f'module.{key}': value for key, value in weights.items()}}, path)
    opt = {
        'model_type': 'SRModel', 'is_train': False, 'dist': False, 'num_gpu': 0, 'scale': 1,
        'network_g': {'type': 'Uformer', **TINY},
        'path': {'pretrain_network_g': path, 'param_key_g': 'state_dict', 'strict_load_g': True},
    }
    model = build_model(opt)
    assert all(torch.equal(value, weights[key]) for key, value in model.net_g.state_dict().items())


@pytest.mark.parametrize('size', [(37, 53), (64, 64), (70, 20)])
def test_any_input_size_keeps_size(size):
    assert_keeps_size(tiny(), torch.rand(2, 3, *size))


def test_global_residual_off_predicts_the_image_itself():
    assert_global_residual_switch(tiny, torch.rand(1, 3, 40, 24))


def test_extra_input_channels_need_global_residual_off():
    with pytest.raises(ValueError, match='global_residual'):
        tiny(dd_in=4)
    with torch.no_grad():
        out = tiny(dd_in=4, global_residual=False)(torch.rand(1, 4, 16, 16))
    assert out.shape == (1, 3, 16, 16)


@pytest.mark.parametrize('kwargs, key', [({'token_projection': 'conv'}, 'token_projection'),
                                         ({'token_mlp': 'fastleff'}, 'token_mlp'),
                                         ({'depths': [1] * 8}, 'depths')])
def test_unsupported_options_are_named(kwargs, key):
    with pytest.raises(ValueError, match=key):
        tiny(**kwargs)


def test_mlp_feed_forward_builds_and_runs():
    net = tiny(token_mlp='mlp')
    assert 'encoderlayer_0.blocks.0.mlp.fc1.weight' in net.state_dict()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 20, 20)).shape == (1, 3, 20, 20)


def test_default_taps_are_feature_maps():
    net = tiny()
    names = [f'encoderlayer_{i}' for i in range(4)] + ['conv'] + [f'decoderlayer_{i}' for i in range(4)]
    assert Uformer.default_taps['encoder'] + Uformer.default_taps['decoder'] == names
    shapes = {}

    def record(name):
        def hook(module, inputs, output):
            shapes[name] = tuple(output.shape)
        return hook

    for name in names:
        net.get_submodule(name).register_forward_hook(record(name))
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 64))
    expected = {f'encoderlayer_{i}': (1, 8 * 2**i, 64 // 2**i, 64 // 2**i) for i in range(4)}
    expected['conv'] = (1, 128, 4, 4)
    expected.update({f'decoderlayer_{i}': (1, 8 * 2**(4 - i), 8 * 2**i, 8 * 2**i) for i in range(4)})
    assert shapes == expected


def test_small_img_size_shrinks_deep_windows_as_the_original():
    """img_size 32 with 4-px windows: the 2-px bottleneck uses 2-px windows and does not shift."""
    net = tiny(img_size=32, depths=[2] * 9)
    assert tuple(net.conv.blocks[0].attn.relative_position_bias_table.shape) == (9, 16)
    assert net.conv.blocks[1].shift == 0 and net.encoderlayer_0.blocks[1].shift == 2
    with torch.no_grad():
        assert net(torch.rand(1, 3, 33, 31)).shape == (1, 3, 33, 31)


def reference_lewin_block(block: LeWinTransformerBlock, x: torch.Tensor) -> torch.Tensor:
    """The LeWin block of the paper, step by step: LN, cyclic shift, windowed multi-head attention with a
    relative position bias and the modulator, mask for tokens wrapped around by the shift, LeFF."""
    b, h, w, c = x.shape
    ws, s, heads = block.window, block.shift, block.attn.num_heads
    hd = c // heads
    y = F.layer_norm(x, (c, ), block.norm1.weight, block.norm1.bias)
    y = torch.roll(y, (-s, -s), (1, 2))
    # windows: b, window row, window col, pixel in window (row-major), channel
    win = y.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h // ws, w // ws, ws * ws, c)
    win = win + block.modulator.weight
    q = F.linear(win, block.attn.qkv.to_q.weight, block.attn.qkv.to_q.bias).unflatten(-1, (heads, hd))
    kv = F.linear(win, block.attn.qkv.to_kv.weight, block.attn.qkv.to_kv.bias)
    k, v = kv[..., :c].unflatten(-1, (heads, hd)), kv[..., c:].unflatten(-1, (heads, hd))
    logits = torch.einsum('bijphd,bijqhd->bijhpq', q, k) / hd**0.5
    rows, cols = torch.arange(ws * ws) // ws, torch.arange(ws * ws) % ws
    dy, dx = rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]
    bias = block.attn.relative_position_bias_table[(dy + ws - 1) * (2 * ws - 1) + dx + ws - 1]  # N x N x heads
    logits = logits + bias.permute(2, 0, 1)
    # a token of the shifted map came from the far side when it lies in the last s rows / columns
    wrapped_r = (torch.arange(h // ws)[:, None] * ws + rows[None, :]) >= h - s
    wrapped_c = (torch.arange(w // ws)[:, None] * ws + cols[None, :]) >= w - s
    same = ((wrapped_r[:, None, :, None] == wrapped_r[:, None, None, :]) &
            (wrapped_c[None, :, :, None] == wrapped_c[None, :, None, :]))
    logits = logits.masked_fill(~same[None, :, :, None], float('-inf'))
    out = torch.einsum('bijhpq,bijqhd->bijphd', logits.softmax(-1), v).flatten(-2)
    out = F.linear(out, block.attn.proj.weight, block.attn.proj.bias)
    out = out.reshape(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
    x = x + torch.roll(out, (s, s), (1, 2))

    z = F.layer_norm(x, (c, ), block.norm2.weight, block.norm2.bias)
    leff = block.mlp
    z = F.gelu(F.linear(z, leff.linear1[0].weight, leff.linear1[0].bias)).permute(0, 3, 1, 2)
    z = F.gelu(F.conv2d(z, leff.dwconv[0].weight, leff.dwconv[0].bias, padding=1, groups=z.shape[1]))
    return x + F.linear(z.permute(0, 2, 3, 1), leff.linear2[0].weight, leff.linear2[0].bias)


def test_shifted_lewin_block_matches_step_by_step_reference():
    block = tiny(depths=[2] * 9, num_heads=[2] * 9).decoderlayer_3.blocks[1]
    assert block.shift == 2 and block.modulator is not None
    with torch.no_grad():
        for param in block.parameters():
            param.normal_(0, 0.5)
        x = torch.randn(2, 12, 16, 16)
        got = block(x, shift_window_mask(12, 16, block.window, block.shift, x.device, x.dtype))
        torch.testing.assert_close(got, reference_lewin_block(block, x), rtol=1e-4, atol=1e-4)
