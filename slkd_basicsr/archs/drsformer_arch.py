"""DRSformer (Chen et al., "Learning A Sparse Transformer Network for Effective Image Deraining", CVPR 2023).

The Restormer body with Top-K Sparse Attention (TKSA), a Mixed-Scale Feed-forward Network (MSFN) and a
Mixture of Experts Feature Compensator (MEFC) before the encoder and as the refinement stage.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from .arch_util import StudentPreset, crop_to, pad_to_multiple
from .restormer_blocks import ChannelAttention, TransformerUNet, check_residual_channels


class TopKSparseAttention(ChannelAttention):
    """TKSA: MDTA whose C_h x C_h logits keep, per row, only the top ``k`` entries before the softmax.

    Four masks keep ``k = C_h * r // 1`` for ``r`` in 1/2, 2/3, 3/4, 4/5 of the C_h channels of a head; their
    outputs are mixed by the learnable scalars ``attn1..attn4`` (initially 0.2 each). Every head needs at
    least 2 channels so that each mask keeps at least one entry.
    """

    keep_ratios = ((1, 2), (2, 3), (3, 4), (4, 5))

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__(dim, num_heads, bias)
        if dim // num_heads < 2:
            raise ValueError(f'Top-k sparse attention needs at least 2 channels per head, got {dim} channels and '
                             f'{num_heads} heads: lower that level\'s heads.')
        self.attn1 = nn.Parameter(torch.tensor([0.2]))
        self.attn2 = nn.Parameter(torch.tensor([0.2]))
        self.attn3 = nn.Parameter(torch.tensor([0.2]))
        self.attn4 = nn.Parameter(torch.tensor([0.2]))

    def attend(self, logits: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        channels = logits.shape[-1]
        out = 0
        for mix, (num, den) in zip((self.attn1, self.attn2, self.attn3, self.attn4), self.keep_ratios):
            top, index = logits.topk(channels * num // den, dim=-1)
            sparse = torch.full_like(logits, float('-inf')).scatter(-1, index, top)
            out = out + (sparse.softmax(dim=-1) @ v) * mix
        return out


class MixedScaleFeedForward(nn.Module):
    """MSFN: 3x3 and 5x5 depth-wise branches on the expanded features, crossed and fused, with ReLUs.

    ``project_in`` expands to 2h channels (h = ``int(dim * ffn_expansion_factor)``); each of ``dwconv3x3`` and
    ``dwconv5x5`` gives two halves; the first halves of both go through ``dwconv3x3_1``, the second halves through
    ``dwconv5x5_1`` (grouped, 2 channels in per channel out); ``project_out`` fuses the 2h channels back to dim.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv3x3 = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.dwconv5x5 = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=5, padding=2, groups=hidden * 2, bias=bias)
        self.dwconv3x3_1 = nn.Conv2d(hidden * 2, hidden, kernel_size=3, padding=1, groups=hidden, bias=bias)
        self.dwconv5x5_1 = nn.Conv2d(hidden * 2, hidden, kernel_size=5, padding=2, groups=hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden * 2, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_in(x)
        a3, b3 = F.relu(self.dwconv3x3(x)).chunk(2, dim=1)
        a5, b5 = F.relu(self.dwconv5x5(x)).chunk(2, dim=1)
        a = F.relu(self.dwconv3x3_1(torch.cat([a3, a5], dim=1)))
        b = F.relu(self.dwconv5x5_1(torch.cat([b3, b5], dim=1)))
        return self.project_out(torch.cat([a, b], dim=1))


class SeparableConv(nn.Module):
    """Expert ``sep_conv_kxk``: (k x k depth-wise, 1x1) twice with a ReLU between; C channels, no biases."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        padding = kernel_size // 2
        self.op = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size, padding=padding, groups=channels, bias=False),
            nn.Conv2d(channels, channels, kernel_size=1, bias=False), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size, padding=padding, groups=channels, bias=False),
            nn.Conv2d(channels, channels, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilatedConv(nn.Module):
    """Expert ``dil_conv_kxk``: k x k depth-wise with dilation 2, then 1x1; C channels, no biases."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.op = nn.Sequential(
            nn.Conv2d(
                channels, channels, kernel_size, padding=kernel_size - 1, dilation=2, groups=channels, bias=False),
            nn.Conv2d(channels, channels, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def experts(channels: int) -> nn.ModuleList:
    """The 8 experts in the original order (the last, a 3x3 average pool, has no parameters)."""
    return nn.ModuleList([
        *(SeparableConv(channels, k) for k in (1, 3, 5, 7)),
        *(DilatedConv(channels, k) for k in (3, 5, 7)),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    ])


# Attribute names with a leading underscore (``_ops``, ``_out``) are kept from the original so that its
# checkpoints load; the same goes for ``layers`` holding the gate and the expert group as a pair.
class ExpertLayer(nn.Module):
    """One step of the MEFC: the experts' outputs, weighted per image, concatenated and fused by 1x1 + ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self._ops = experts(channels)
        self._out = nn.Sequential(nn.Conv2d(channels * len(self._ops), channels, kernel_size=1, bias=False), nn.ReLU())

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x`` B x C x H x W, ``weights`` B x num_experts -> B x C x H x W."""
        states = [op(x) * weights[:, i, None, None, None] for i, op in enumerate(self._ops)]
        return self._out(torch.cat(states, dim=1))


class ExpertGroup(nn.Module):
    """A 1x1 conv + ReLU, then ``steps`` residual :class:`ExpertLayer` s, each followed by a ReLU."""

    def __init__(self, channels: int, steps: int):
        super().__init__()
        self.preprocess = ConvReLU(channels)
        self._ops = nn.ModuleList([ExpertLayer(channels) for _ in range(steps)])

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``weights`` B x steps x num_experts: the mixing weights of every step."""
        x = self.preprocess(x)
        for step, layer in enumerate(self._ops):
            x = F.relu(layer(x, weights[:, step]) + x)
        return x


class ConvReLU(nn.Module):
    """1x1 convolution without bias, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Sequential(nn.Conv2d(channels, channels, kernel_size=1, bias=False), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ExpertGate(nn.Module):
    """Per-image expert weights from the globally pooled features: MLP, softmax over the experts per step."""

    def __init__(self, channels: int, steps: int, num_experts: int):
        super().__init__()
        self.steps = steps
        self.num_experts = num_experts
        self.ca_fc = nn.Sequential(
            nn.Linear(channels, steps * num_experts * 2), nn.ReLU(),
            nn.Linear(steps * num_experts * 2, steps * num_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x steps x num_experts weights, each row summing to 1."""
        logits = self.ca_fc(x.mean(dim=(2, 3)))
        return logits.view(-1, self.steps, self.num_experts).softmax(dim=-1)


class FeatureCompensator(nn.Module):
    """MEFC: a gate computed on the input picks how the experts of each of ``steps`` steps are mixed.

    B x C x H x W -> B x C x H x W. ``layers`` is ``[ExpertGate, ExpertGroup]`` (the original's layout).
    """

    def __init__(self, channels: int, steps: int = 4):
        super().__init__()
        group = ExpertGroup(channels, steps)
        self.layers = nn.ModuleList([ExpertGate(channels, steps, len(group._ops[0]._ops)), group])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, group = self.layers
        return group(x, gate(x))


@ARCH_REGISTRY.register()
class DRSformer(TransformerUNet):
    """DRSformer with the original constructor arguments and module names (official checkpoints load strictly).

    ``patch_embed`` -> ``encoder_level0`` (MEFC) -> the Restormer U-Net (``encoder_level1..3``, ``latent``,
    ``decoder_level3..1``) with sparse transformer blocks -> ``refinement`` (MEFC) -> ``output`` + input.

    Input: B x ``inp_channels`` x H x W, any H and W (padded by reflection to a multiple of 8 inside and cropped
    back). Output: B x ``out_channels`` x H x W.

    Args:
        inp_channels, out_channels, dim, num_blocks, heads, ffn_expansion_factor, bias, LayerNorm_type: as in the
            original. Each level needs at least 2 channels per head (``dim * 2**i // heads[i] >= 2``).
        global_residual: Add the input image to the output (the original behaviour); ``False`` predicts the image
            itself (a Teacher B for SLKD). No parameters of its own.

    Default SLKD taps (``default_taps``, from :class:`TransformerUNet`, whose module names DRSformer keeps):
    encoder ``encoder_level1..3``, ``latent``; decoder ``decoder_level3..1``.
    """

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = 'WithBias',  # noqa: N803  (original argument name)
                 global_residual: bool = True):
        if global_residual:
            check_residual_channels(inp_channels, out_channels)
        super().__init__(inp_channels, dim, num_blocks, heads, ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                         LayerNorm_type=LayerNorm_type, attention=TopKSparseAttention, ffn=MixedScaleFeedForward)
        self.encoder_level0 = FeatureCompensator(dim)
        self.refinement = FeatureCompensator(dim * 2)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)
        self.global_residual = global_residual

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(inp_img, self.downscale)
        features = self.encode_decode(self.encoder_level0(self.patch_embed(x)))
        out = self.output(self.refinement(features))
        if self.global_residual:
            out = out + x
        return crop_to(out, size)


@ARCH_REGISTRY.register()
class DRSSL(StudentPreset, DRSformer):
    """DRS-SL, the SLKD student of DRSformer: the same architecture (sparse attention, mixed-scale FFN, both MEFC
    stages) at a third of the width with fewer blocks.

    ``dim`` 16, ``num_blocks`` [1, 2, 2, 4], every other argument DRSformer's default (heads [1, 2, 4, 8], so every
    head has 16 channels); any of them can be overridden by keyword. Against the official deraining DRSformer
    (dim 48, blocks [4, 6, 6, 8]): about 7% of its parameters and 8% of its FLOPs at 256x256
    (``bench/results/complexity.json``). The state dict is a ``DRSformer``'s with the same arguments, and so are
    the default taps, each at the teacher's resolution.
    """

    preset = dict(dim=16, num_blocks=[1, 2, 2, 4])
