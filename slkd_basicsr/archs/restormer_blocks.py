"""Blocks of the Restormer family (Restormer, DRSformer), written from Zamir et al., CVPR 2022.

Module and parameter names follow the original implementations so that their released checkpoints load
with ``strict_load: true``. All maps are B x C x H x W float tensors; no value range is assumed.
"""
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .arch_util import LayerNorm2d

LAYER_NORM_TYPES = ('WithBias', 'BiasFree')


class LayerNorm(nn.Module):
    """Restormer's channel layer norm: ``body`` is the ``WithBias`` or ``BiasFree`` variant (eps 1e-5)."""

    def __init__(self, dim: int, LayerNorm_type: str):  # noqa: N803  (original argument name)
        super().__init__()
        if LayerNorm_type not in LAYER_NORM_TYPES:
            raise ValueError(f'LayerNorm_type must be one of {LAYER_NORM_TYPES}, got {LayerNorm_type!r}.')
        self.body = LayerNorm2d(dim, with_bias=LayerNorm_type == 'WithBias', eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ChannelAttention(nn.Module):
    """Multi-Dconv head Transposed Attention (MDTA): attention across channels, linear in H*W.

    ``q, k, v`` come from a 1x1 then a 3x3 depth-wise convolution; per head, ``q`` and ``k`` are L2-normalised
    along the pixels, the C_h x C_h logits ``q k^T`` are scaled by a learnable per-head ``temperature`` and
    turned into weights by :meth:`attend`.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = qkv.unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        logits = (q @ k.transpose(-2, -1)) * self.temperature
        return self.project_out(self.attend(logits, v).reshape(b, c, h, w))

    def attend(self, logits: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Mix ``v`` (B x heads x C_h x HW) with the B x heads x C_h x C_h ``logits``: a dense softmax."""
        return logits.softmax(dim=-1) @ v


class GatedDconvFeedForward(nn.Module):
    """Gated-Dconv Feed-forward Network (GDFN): ``project_out(gelu(x1) * x2)``, ``x1, x2`` from a dconv branch.

    The hidden width is ``int(dim * ffn_expansion_factor)``.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """Pre-norm block ``x + attn(norm1(x))`` then ``x + ffn(norm2(x))``; the attention and FFN kinds are pluggable.

    ``attention(dim, num_heads, bias)`` and ``ffn(dim, ffn_expansion_factor, bias)`` build the two sub-layers.
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            ffn_expansion_factor: float,
            bias: bool,
            LayerNorm_type: str,  # noqa: N803  (original argument name)
            attention: Callable[[int, int, bool], nn.Module] = ChannelAttention,
            ffn: Callable[[int, float, bool], nn.Module] = GatedDconvFeedForward):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = ffn(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 convolution from the image channels to the embedding width, stride 1 (no bias by default)."""

    def __init__(self, in_c: int = 3, embed_dim: int = 48, bias: bool = False):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _ConvThenShuffle(nn.Module):
    """A 3x3 convolution (no bias) to ``out_channels``, then ``shuffle``; ``body.0`` / ``body.1`` as in the original."""

    def __init__(self, n_feat: int, out_channels: int, shuffle: nn.Module):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, out_channels, kernel_size=3, padding=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Downsample(_ConvThenShuffle):
    """Halve H and W, double C: 3x3 conv to C/2 channels, then pixel-unshuffle by 2."""

    def __init__(self, n_feat: int):
        super().__init__(n_feat, n_feat // 2, nn.PixelUnshuffle(2))


class Upsample(_ConvThenShuffle):
    """Double H and W, halve C: 3x3 conv to 2C channels, then pixel-shuffle by 2."""

    def __init__(self, n_feat: int):
        super().__init__(n_feat, n_feat * 2, nn.PixelShuffle(2))


class TransformerUNet(nn.Module):
    """The 4-level encoder-decoder shared by Restormer and DRSformer, up to ``decoder_level1``.

    Level ``i`` (0-based) works at 1/2**i of the input resolution with ``dim * 2**i`` channels and
    ``num_blocks[i]`` :class:`TransformerBlock` s of ``heads[i]`` heads; level 3 is ``latent``. Decoder level 1
    works on the concatenation with the encoder skip, so it has ``2 * dim`` channels. Subclasses add the stem,
    the refinement and the ``output`` convolution, and call :meth:`encode_decode`.

    ``default_taps``: SLKD's feature taps when the options list none: every encoder level and ``latent``
    (1, 1/2, 1/4, 1/8 of the input side) vs Teacher A, the decoder levels (1/4, 1/2, 1) vs Teacher B. A fixed list,
    as the depth is fixed: ``num_blocks`` and ``heads`` must have 4 entries (:func:`check_levels`), as in the
    original Restormer and DRSformer, whose checkpoints name these modules.
    """

    downscale = 8  # three 2x downsamplings: H and W must be multiples of 8
    default_taps = {
        'encoder': ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent'],
        'decoder': ['decoder_level3', 'decoder_level2', 'decoder_level1'],
    }

    def __init__(self, inp_channels: int, dim: int, num_blocks: Sequence[int], heads: Sequence[int],
                 **block_args: Any):
        """``block_args``: the other arguments of every :class:`TransformerBlock` (``ffn_expansion_factor``,
        ``bias``, which the skip reductions use too, ``LayerNorm_type``, and optionally ``attention``, ``ffn``)."""
        super().__init__()
        check_levels(dim, num_blocks, heads)
        self.block_args = block_args
        bias = block_args['bias']
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = self.level(dim, heads[0], num_blocks[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = self.level(dim * 2, heads[1], num_blocks[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = self.level(dim * 4, heads[2], num_blocks[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = self.level(dim * 8, heads[3], num_blocks[3])
        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = self.level(dim * 4, heads[2], num_blocks[2])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = self.level(dim * 2, heads[1], num_blocks[1])
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = self.level(dim * 2, heads[0], num_blocks[0])

    def level(self, channels: int, num_heads: int, count: int) -> nn.Sequential:
        """``count`` transformer blocks of ``channels`` channels and ``num_heads`` heads."""
        return nn.Sequential(*[TransformerBlock(channels, num_heads, **self.block_args) for _ in range(count)])

    def encode_decode(self, x: torch.Tensor) -> torch.Tensor:
        """B x dim x H x W level-1 features (H, W multiples of 8) -> B x 2*dim x H x W decoder features."""
        enc1 = self.encoder_level1(x)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        return self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))


def check_levels(dim: int, num_blocks: Sequence[int], heads: Sequence[int]) -> None:
    """Raise ``ValueError`` naming the option when the 4-level layout cannot be built."""
    if len(num_blocks) != 4 or len(heads) != 4:
        raise ValueError(f'num_blocks and heads need 4 entries (3 encoder levels and latent), '
                         f'got num_blocks={list(num_blocks)}, heads={list(heads)}.')
    for level, num_heads in enumerate(heads):
        channels = dim * 2**level
        if channels % num_heads:
            raise ValueError(f'heads[{level}]={num_heads} must divide the {channels} channels of level {level} '
                             f'(dim={dim} * 2**{level}).')


def check_residual_channels(inp_channels: int, out_channels: int) -> None:
    """Raise ``ValueError`` when a global residual (output + input) cannot be added."""
    if inp_channels != out_channels:
        raise ValueError(f'global_residual adds the input to the output, so inp_channels ({inp_channels}) must '
                         f'equal out_channels ({out_channels}); set global_residual: false otherwise.')
