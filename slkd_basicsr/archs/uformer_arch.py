"""Uformer (Wang et al., "Uformer: A General U-Shaped Transformer for Image Restoration", CVPR 2022).

A U-shaped network of LeWin Transformer blocks: non-overlapping window self-attention with a relative
position bias (every second block shifts the windows by half a window), a locally-enhanced feed-forward
network (LeFF), and, in the decoder, a learnable multi-scale restoration modulator added to each window.
Four 4x4 stride-2 convolutions go down, four 2x2 transposed convolutions go up, and each decoder level
concatenates the upsampled features with the encoder features of the same scale.

Module names and parameter shapes follow the official implementation, so its checkpoints (weights under
``state_dict``) load strictly. Unlike the official code, which assumes square token maps, the network
works on any B x C x H x W input: it pads (reflect) to the multiple that the windows and the four
downsamplings need and crops the output back.

Every encoder/decoder stage (``encoderlayer_0..3``, ``conv``, ``decoderlayer_0..3``) takes and returns a
B x C x H x W feature map, so forward hooks on these names see ordinary feature maps.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torchvision.ops import StochasticDepth

from slkd_basicsr.archs.arch_util import StudentPreset, crop_to, pad_to_multiple

NUM_STAGES = 9  # 4 encoder levels, the bottleneck, 4 decoder levels
NUM_DOWNSAMPLINGS = 4
# The official code fills masked attention logits with -100 rather than -inf; kept for identical outputs.
MASKED_LOGIT = -100.0


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """Cut B x H x W x C into non-overlapping windows: (B * H/window * W/window) x window**2 x C, row-major."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW) x window**2 x C back to B x H x W x C."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shift_window_mask(h: int, w: int, window: int, shift: int, device: torch.device,
                      dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask for windows of an H x W map cyclically shifted by ``shift`` pixels.

    After the shift, a window at the bottom or right border holds pixels from opposite sides of the map;
    tokens may only attend to tokens from the same original region.

    Returns:
        nW x window**2 x window**2 tensor, 0 where attention is allowed and -100 where it is not.
    """
    regions = torch.zeros(1, h, w, 1, device=device, dtype=dtype)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for label, (rows, cols) in enumerate((r, c) for r in bands for c in bands):
        regions[:, rows, cols, :] = label
    labels = window_partition(regions, window).squeeze(-1)
    different = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros_like(different, dtype=dtype).masked_fill(different, MASKED_LOGIT)


def relative_position_index(window: int) -> torch.Tensor:
    """window**2 x window**2 index into a (2 * window - 1)**2 table of relative (dy, dx) offsets."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing='ij')).flatten(1)
    offsets = coords[:, :, None] - coords[:, None, :] + window - 1
    return offsets[0] * (2 * window - 1) + offsets[1]


def linear_rates(start: float, end: float, count: int) -> List[float]:
    """``count`` evenly spaced values from ``start`` to ``end`` (plain floats, so the net builds on any device)."""
    steps = [i / max(count - 1, 1) for i in range(count)]
    return [start * (1 - t) + end * t for t in steps]


class LinearProjection(nn.Module):
    """Query and key/value projections of tokens (the official ``token_projection='linear'``)."""

    def __init__(self, dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_kv = nn.Linear(dim, dim * 2, bias=bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: B' x N x C. Returns q, k, v, each B' x heads x N x C/heads."""
        b, n, c = x.shape
        q = self.to_q(x).reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)
        k, v = self.to_kv(x).reshape(b, n, 2, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        return q, k, v


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads)**-0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1)**2, num_heads))
        # persistent: the official checkpoints store it
        self.register_buffer('relative_position_index', relative_position_index(window))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        self.qkv = LinearProjection(dim, num_heads, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B * nW) x N x C windows; mask: nW x N x N additive, or None. Returns (B * nW) x N x C."""
        b, n, c = x.shape
        q, k, v = self.qkv(x)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(b // num_windows, num_windows, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(b, self.num_heads, n, n)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class LeFF(nn.Module):
    """Locally-enhanced feed-forward network: linear, GELU, depth-wise 3x3 conv, GELU, linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x H x W x C. Returns B x H x W x C."""
        x = self.linear1(x)
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.linear2(x)


class Mlp(nn.Module):
    """Plain token feed-forward network (the official ``token_mlp='mlp'``): linear, GELU, linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ... x C. Returns ... x C."""
        return self.fc2(self.act(self.fc1(x)))


TOKEN_MLPS = {'leff': LeFF, 'mlp': Mlp, 'ffn': Mlp}  # 'ffn' is the official alias of 'mlp'


class LeWinTransformerBlock(nn.Module):
    """Pre-norm (shifted) window attention and feed-forward, each with a residual connection.

    With ``modulator`` a learned window**2 x C embedding is added to every window before attention.
    """

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop_path: float, token_mlp: str, modulator: bool) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.modulator = nn.Embedding(window * window, dim) if modulator else None
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.drop_path = StochasticDepth(drop_path, mode='row')
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = TOKEN_MLPS[token_mlp](dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, shift_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: B x H x W x C with H, W multiples of the window; shift_mask from :func:`shift_window_mask`
        (used only when this block shifts). Returns B x H x W x C."""
        h, w = x.shape[1:3]
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(y, self.window)
        if self.modulator is not None:
            windows = windows + self.modulator.weight
        windows = self.attn(windows, shift_mask if self.shift else None)
        y = window_merge(windows, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class UformerLayer(nn.Module):
    """A stack of LeWin blocks at one scale; blocks 1, 3, 5, ... shift their windows when ``shift`` > 0.

    Takes and returns B x C x H x W feature maps (H, W multiples of ``window``).
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window: int, shift: int, mlp_ratio: float,
                 qkv_bias: bool, qk_scale: Optional[float], drop_path: Sequence[float], token_mlp: str,
                 modulator: bool) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.blocks = nn.ModuleList([
            LeWinTransformerBlock(dim, num_heads, window, shift if i % 2 else 0, mlp_ratio, qkv_bias, qk_scale,
                                  drop_path[i], token_mlp, modulator) for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x C x H x W. Returns B x C x H x W."""
        h, w = x.shape[-2:]
        shifts = self.shift and len(self.blocks) > 1
        mask = shift_window_mask(h, w, self.window, self.shift, x.device, x.dtype) if shifts else None
        x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x, mask)
        return x.permute(0, 3, 1, 2)


class ConvStage(nn.Module):
    """One convolution (optionally followed by an activation) under the official attribute name."""

    def __init__(self, name: str, *layers: nn.Module) -> None:
        super().__init__()
        self.add_module(name, nn.Sequential(*layers))
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x C x H x W. Returns the layers' output, B x C' x H' x W'."""
        return getattr(self, self.name)(x)


@ARCH_REGISTRY.register()
class Uformer(nn.Module):
    """Uformer: input projection, 4 encoder levels, a bottleneck, 4 decoder levels, output projection.

    Args:
        img_size: Training patch size of the official configuration. As in the official code it only fixes,
            per scale, the window (``min(win_size, img_size / 2**level)``) and whether windows shift (only where
            ``img_size / 2**level > win_size``); inputs of any size are accepted.
        in_chans: Output channels.
        dd_in: Input channels.
        embed_dim: Channels of the first level; level ``l`` has ``embed_dim * 2**l``, decoder levels twice
            those of the encoder at the same scale (upsampled and skip features concatenated).
        depths: LeWin blocks per stage: 4 encoder levels, bottleneck, 4 decoder levels.
        num_heads: Attention heads per stage, same order as ``depths``.
        win_size: Attention window side.
        mlp_ratio: Hidden width of the feed-forward network relative to the stage width.
        qkv_bias: Whether query/key/value projections have a bias.
        qk_scale: Attention logit scale; None for ``head_dim ** -0.5``.
        drop_path_rate: Stochastic depth (training only): rises linearly from 0 to this value through the
            encoder, stays at it in the bottleneck, falls back to 0 through the decoder.
        token_projection: 'linear' (the official 'conv' projection is not supported).
        token_mlp: 'leff' (locally-enhanced, depth-wise conv) or 'mlp' (alias 'ffn').
        shift_flag: Whether every second block shifts its windows.
        modulator: Whether decoder blocks add the learnable modulator to each window.
        global_residual: Add the input to the output (official behaviour). False gives a plain
            image-to-image mapping (used for SLKD's Teacher B); it adds no parameters.

    Input: B x dd_in x H x W, any H and W, values in the range the weights were trained on (usually [0, 1]).
    Output: B x in_chans x H x W.

    ``default_taps``: SLKD's feature taps when the options list none: encoder ``encoderlayer_0..3`` (1 ... 1/8 of
    the padded input side) and the bottleneck ``conv`` (1/16), decoder ``decoderlayer_0..3`` (1/8 ... 1). A fixed
    list, as the depth is fixed: 4 levels, as in the official code (``depths`` and ``num_heads`` need 9 entries).
    """

    default_taps = {
        'encoder': ['encoderlayer_0', 'encoderlayer_1', 'encoderlayer_2', 'encoderlayer_3', 'conv'],
        'decoder': ['decoderlayer_0', 'decoderlayer_1', 'decoderlayer_2', 'decoderlayer_3'],
    }

    def __init__(self,
                 img_size: int = 256,
                 in_chans: int = 3,
                 dd_in: int = 3,
                 embed_dim: int = 32,
                 depths: Sequence[int] = (2, 2, 2, 2, 2, 2, 2, 2, 2),
                 num_heads: Sequence[int] = (1, 2, 4, 8, 16, 16, 8, 4, 2),
                 win_size: int = 8,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_path_rate: float = 0.1,
                 token_projection: str = 'linear',
                 token_mlp: str = 'leff',
                 shift_flag: bool = True,
                 modulator: bool = False,
                 global_residual: bool = True) -> None:
        super().__init__()
        self._check_args(img_size, in_chans, dd_in, depths, num_heads, token_projection, token_mlp,
                         global_residual)
        self.global_residual = global_residual

        levels = list(range(NUM_DOWNSAMPLINGS + 1))
        resolutions = [img_size // 2**level for level in levels]
        windows = [min(win_size, res) for res in resolutions]
        shifts = [win_size // 2 if shift_flag and res > win_size else 0 for res in resolutions]
        # H and W must split into windows at every scale after four halvings
        self.pad_multiple = math.lcm(*(window * 2**level for level, window in zip(levels, windows)))

        num_enc = sum(depths[:NUM_DOWNSAMPLINGS])
        enc_rates = linear_rates(0, drop_path_rate, num_enc)
        dec_rates = linear_rates(drop_path_rate, 0, sum(depths[NUM_DOWNSAMPLINGS + 1:]))
        rates = enc_rates + [drop_path_rate] * depths[NUM_DOWNSAMPLINGS] + dec_rates
        starts = [sum(depths[:i]) for i in range(NUM_STAGES)]

        def layer(stage: int, dim: int, level: int, use_modulator: bool) -> UformerLayer:
            return UformerLayer(dim, depths[stage], num_heads[stage], windows[level], shifts[level], mlp_ratio,
                                qkv_bias, qk_scale, rates[starts[stage]:starts[stage] + depths[stage]], token_mlp,
                                use_modulator)

        self.input_proj = ConvStage('proj', nn.Conv2d(dd_in, embed_dim, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.output_proj = ConvStage('proj', nn.Conv2d(2 * embed_dim, in_chans, 3, padding=1))
        for level in range(NUM_DOWNSAMPLINGS):
            dim = embed_dim * 2**level
            self.add_module(f'encoderlayer_{level}', layer(level, dim, level, False))
            # 'dowsample' (sic) is the official name, kept so that official checkpoints load
            self.add_module(f'dowsample_{level}', ConvStage('conv', nn.Conv2d(dim, dim * 2, 4, stride=2, padding=1)))
        self.conv = layer(NUM_DOWNSAMPLINGS, embed_dim * 2**NUM_DOWNSAMPLINGS, NUM_DOWNSAMPLINGS, False)
        for i in range(NUM_DOWNSAMPLINGS):
            level = NUM_DOWNSAMPLINGS - 1 - i
            in_dim = embed_dim * 2**(level + 1) * (1 if i == 0 else 2)
            up = nn.ConvTranspose2d(in_dim, embed_dim * 2**level, 2, stride=2)
            self.add_module(f'upsample_{i}', ConvStage('deconv', up))
            stage = NUM_DOWNSAMPLINGS + 1 + i
            self.add_module(f'decoderlayer_{i}', layer(stage, embed_dim * 2**(level + 1), level, modulator))
        self.apply(self._init_weights)

    @staticmethod
    def _check_args(img_size: int, in_chans: int, dd_in: int, depths: Sequence[int], num_heads: Sequence[int],
                    token_projection: str, token_mlp: str, global_residual: bool) -> None:
        if token_projection != 'linear':
            raise ValueError(f"Uformer: token_projection={token_projection!r} is not supported; use 'linear'.")
        if token_mlp not in TOKEN_MLPS:
            raise ValueError(f'Uformer: token_mlp={token_mlp!r} is not supported; use one of {sorted(TOKEN_MLPS)}.')
        for name, values in (('depths', depths), ('num_heads', num_heads)):
            if len(values) != NUM_STAGES:
                raise ValueError(f'Uformer: {name} needs {NUM_STAGES} entries (4 encoder levels, bottleneck, '
                                 f'4 decoder levels), got {list(values)}.')
        if img_size < 2**NUM_DOWNSAMPLINGS:
            raise ValueError(f'Uformer: img_size must be at least {2**NUM_DOWNSAMPLINGS}, got {img_size}.')
        if global_residual and dd_in != in_chans:
            raise ValueError(f'Uformer: global_residual adds the input to the output, so dd_in ({dd_in}) must equal '
                             f'in_chans ({in_chans}); set global_residual: false otherwise.')

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x dd_in x H x W. Returns B x in_chans x H x W."""
        padded, size = pad_to_multiple(x, self.pad_multiple)
        feat = self.input_proj(padded)
        skips = []
        for level in range(NUM_DOWNSAMPLINGS):
            feat = getattr(self, f'encoderlayer_{level}')(feat)
            skips.append(feat)
            feat = getattr(self, f'dowsample_{level}')(feat)
        feat = self.conv(feat)
        for i in range(NUM_DOWNSAMPLINGS):
            feat = torch.cat([getattr(self, f'upsample_{i}')(feat), skips.pop()], dim=1)
            feat = getattr(self, f'decoderlayer_{i}')(feat)
        out = crop_to(self.output_proj(feat), size)
        return x + out if self.global_residual else out


@ARCH_REGISTRY.register()
class UforSL(StudentPreset, Uformer):
    """Ufor-SL, the SLKD student of Uformer-B: the same structure (windows, shifts, LeFF, modulator) at half the
    width with at most 2 LeWin blocks per stage.

    ``img_size`` 128, ``embed_dim`` 16, ``depths`` [1, 2, 2, 2, 2, 2, 2, 2, 1], ``modulator`` True, every other
    argument Uformer's default (``win_size`` 8, linear token projection, LeFF); any of them can be overridden by
    keyword. 5.27 M parameters and 9.83 GFLOPs (multiply-adds) at 256x256, 89.6% and 88.7% fewer than Uformer-B
    (50.88 M, 86.89 G). Every default tap (Uformer's) has the teacher's resolution and half its channels. The state
    dict is a ``Uformer``'s with the same arguments.
    """

    preset = dict(img_size=128, embed_dim=16, depths=[1, 2, 2, 2, 2, 2, 2, 2, 1], modulator=True)
