"""Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration", CVPR 2022)."""
from typing import Sequence

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from .arch_util import StudentPreset, crop_to, pad_to_multiple
from .restormer_blocks import TransformerUNet, check_residual_channels


@ARCH_REGISTRY.register()
class Restormer(TransformerUNet):
    """Restormer with the original constructor arguments and module names (official checkpoints load strictly).

    Input: B x ``inp_channels`` x H x W, any H and W (padded by reflection to a multiple of 8 inside and
    cropped back). Output: B x ``out_channels`` x H x W, in the value range the net was trained for.

    Args:
        inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor, bias,
            LayerNorm_type, dual_pixel_task: as in the original (``LayerNorm_type`` is ``'WithBias'`` or
            ``'BiasFree'``). With ``dual_pixel_task`` the input holds the two dual-pixel views (6 channels), a
            ``skip_conv`` carries the embedded input to the output, and the input is never added to the output.
        global_residual: Add the input image to the output (the original behaviour). ``False`` gives a net that
            predicts the image itself, e.g. SLKD's Teacher B that reconstructs a clean image from itself. It has
            no parameters, so the same checkpoint loads either way.

    Default SLKD taps (``default_taps``, from :class:`TransformerUNet`): encoder ``encoder_level1..3``, ``latent``;
    decoder ``decoder_level3..1``.
    """

    def __init__(
            self,
            inp_channels: int = 3,
            out_channels: int = 3,
            dim: int = 48,
            num_blocks: Sequence[int] = (4, 6, 6, 8),
            num_refinement_blocks: int = 4,
            heads: Sequence[int] = (1, 2, 4, 8),
            ffn_expansion_factor: float = 2.66,
            bias: bool = False,
            LayerNorm_type: str = 'WithBias',  # noqa: N803  (original argument name)
            dual_pixel_task: bool = False,
            global_residual: bool = True):
        super().__init__(inp_channels, dim, num_blocks, heads, ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                         LayerNorm_type=LayerNorm_type)
        self.refinement = self.level(dim * 2, heads[0], num_refinement_blocks)
        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)
        self.global_residual = global_residual and not dual_pixel_task
        if self.global_residual:
            check_residual_channels(inp_channels, out_channels)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(inp_img, self.downscale)
        embedded = self.patch_embed(x)
        features = self.refinement(self.encode_decode(embedded))
        if self.dual_pixel_task:
            features = features + self.skip_conv(embedded)
        out = self.output(features)
        if self.global_residual:
            out = out + x
        return crop_to(out, size)


@ARCH_REGISTRY.register()
class ResSL(StudentPreset, Restormer):
    """Res-SL, the SLKD student of Restormer: the same architecture at half the width with fewer blocks.

    ``dim`` 24, ``num_blocks`` [1, 2, 2, 4], ``num_refinement_blocks`` 1, every other argument Restormer's default;
    any of them can be overridden by keyword (e.g. ``LayerNorm_type='BiasFree'`` beside the real-denoising
    teacher). Against the official deraining Restormer (dim 48, blocks [4, 6, 6, 8], 4 refinement blocks): about
    13% of its parameters and 9% of its FLOPs at 256x256 (``bench/results/complexity.json``). The state dict is a
    ``Restormer``'s with the same arguments, and so are the default taps, each at the teacher's resolution.
    """

    preset = dict(dim=24, num_blocks=[1, 2, 2, 4], num_refinement_blocks=1)
