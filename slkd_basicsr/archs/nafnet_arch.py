"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022)."""
from typing import Dict, List, Sequence

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from .arch_util import LayerNorm2d, StudentPreset, crop_to, pad_to_multiple


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate: split B x 2C x H x W into two halves along C and multiply them (B x C x H x W)."""
    x1, x2 = x.chunk(2, dim=1)
    return x1 * x2


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block of ``c`` channels: two residual branches scaled by ``beta`` and ``gamma``.

    Spatial branch: norm, 1x1 to 2c, 3x3 depth-wise, SimpleGate, Simplified Channel Attention (``x * sca(x)``,
    ``sca`` = global average pool + 1x1), 1x1 back to c. Channel branch: norm, 1x1 to 2c, SimpleGate, 1x1.
    ``beta`` and ``gamma`` start at zero, so a fresh block is the identity.
    """

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw_channels = c * dw_expand
        ffn_channels = c * ffn_expand
        self.conv1 = nn.Conv2d(c, dw_channels, kernel_size=1)
        self.conv2 = nn.Conv2d(dw_channels, dw_channels, kernel_size=3, padding=1, groups=dw_channels)
        self.conv3 = nn.Conv2d(dw_channels // 2, c, kernel_size=1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channels // 2, dw_channels // 2, kernel_size=1))
        self.conv4 = nn.Conv2d(c, ffn_channels, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channels // 2, c, kernel_size=1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = simple_gate(self.conv2(self.conv1(self.norm1(inp))))
        y = inp + self.conv3(x * self.sca(x)) * self.beta
        return y + self.conv5(simple_gate(self.conv4(self.norm2(y)))) * self.gamma


@ARCH_REGISTRY.register()
class NAFNet(nn.Module):
    """NAFNet with the original constructor arguments and module names (official checkpoints load strictly).

    A U-Net: ``intro`` 3x3 conv to ``width``; per encoder level a stack of NAFBlocks (``encoders``) and a
    stride-2 2x2 conv doubling the channels (``downs``); ``middle_blks``; per decoder level a 1x1 conv +
    pixel-shuffle halving the channels (``ups``), the encoder skip added, and NAFBlocks (``decoders``); ``ending``
    3x3 conv back to ``img_channel``.

    Input: B x ``img_channel`` x H x W, any H and W (zero-padded to a multiple of ``2**len(enc_blk_nums)`` as in
    the original, and cropped back). Output: same shape.

    Args:
        img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums: as in the original; ``enc_blk_nums`` and
            ``dec_blk_nums`` need the same length (one entry per level).
        global_residual: Add the input image to the output (the original behaviour); ``False`` predicts the image
            itself (a Teacher B for SLKD). No parameters of its own.

    ``default_taps`` (:attr:`default_taps`): SLKD's feature taps when the options list none, one per level of
    this net's depth, so that NAFNets of any number of levels train without taps in the options.
    """

    def __init__(self,
                 img_channel: int = 3,
                 width: int = 16,
                 middle_blk_num: int = 1,
                 enc_blk_nums: Sequence[int] = (),
                 dec_blk_nums: Sequence[int] = (),
                 global_residual: bool = True):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f'enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} need one '
                             'entry per level each, so the same length.')
        self.global_residual = global_residual
        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for num in enc_blk_nums:
            self.encoders.append(self._stack(channels, num))
            self.downs.append(nn.Conv2d(channels, 2 * channels, kernel_size=2, stride=2))
            channels *= 2
        self.middle_blks = self._stack(channels, middle_blk_num)
        for num in dec_blk_nums:
            self.ups.append(
                nn.Sequential(nn.Conv2d(channels, channels * 2, kernel_size=1, bias=False), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(self._stack(channels, num))
        self.padder_size = 2**len(self.encoders)

    @property
    def default_taps(self) -> Dict[str, List[str]]:
        """SLKD's feature taps when the options list none, for the L = ``len(enc_blk_nums)`` levels of this net.

        Returns:
            ``{'encoder': ['encoders.0', ..., 'encoders.<L-1>'], 'decoder': ['decoders.0', ...,
            'decoders.<L-1>']}``: the encoder levels at 1 ... 1/2**(L-1) of the input side (the features before
            each downsampling), the decoder levels at 1/2**(L-1) ... 1. The bottleneck ``middle_blks`` (1/2**L) is
            left out so that the feature losses, which need maps of at least 4x4, also run at small patches; list
            it in ``distill.encoder_taps`` for patches of 4 * 2**L px or more.
        """
        return {
            'encoder': [f'encoders.{level}' for level in range(len(self.encoders))],
            'decoder': [f'decoders.{level}' for level in range(len(self.decoders))],
        }

    @staticmethod
    def _stack(channels: int, num: int) -> nn.Sequential:
        return nn.Sequential(*[NAFBlock(channels) for _ in range(num)])

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        inp, size = pad_to_multiple(inp, self.padder_size, mode='constant')
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        x = self.ending(x)
        if self.global_residual:
            x = x + inp
        return crop_to(x, size)


@ARCH_REGISTRY.register()
class NAFSL(StudentPreset, NAFNet):
    """NAF-SL, the SLKD student of NAFNet: the same architecture with width 16 and fewer blocks.

    ``width`` 16, ``enc_blk_nums`` [1, 1, 1, 4], ``middle_blk_num`` 2, ``dec_blk_nums`` [1, 1, 1, 1],
    ``img_channel`` 3; any of them can be overridden by keyword. About 7% of the parameters and 11% of the FLOPs
    of the official width-32 SIDD NAFNet at 256x256, under 3% of both for the width-64 GoPro one
    (``bench/results/complexity.json``). Four levels like those teachers, so every default tap (NAFNet's) has the
    teacher's resolution. The state dict is a ``NAFNet``'s with the same arguments.
    """

    preset = dict(img_channel=3, width=16, enc_blk_nums=[1, 1, 1, 4], middle_blk_num=2, dec_blk_nums=[1, 1, 1, 1])
