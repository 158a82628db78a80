"""The LDM/taming convolutional encoder and decoder shared by every tokenizer.

Module and parameter names follow the upstream latent-diffusion code (``down.0.block.0.norm1``,
``mid.attn_1.q``, ``up.3.upsample.conv`` ...), so released checkpoints map onto these modules
almost one to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ConvBackboneConfig:
    """Shape of one encoder/decoder pair.

    ``resolution`` is the input size that ``*_attn_resolutions`` refer to (LDM semantics: a level
    gets self-attention when its feature map at that input size is listed); at run time any input
    size divisible by the downsampling factor is accepted and the same levels attend.
    """

    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    resolution: int = 256
    encoder_attn_resolutions: tuple[int, ...] = (16,)
    decoder_attn_resolutions: tuple[int, ...] = (16,)
    z_channels: int = 32
    dropout: float = 0.0
    norm_groups: int = 32

    @property
    def downsample(self) -> int:
        """Spatial downsampling factor, 2 ** (number of levels - 1)."""
        return 2 ** (len(self.ch_mult) - 1)

    def validate(self) -> None:
        """Raise ValueError when the widths cannot be built (GroupNorm groups must divide)."""
        if not self.ch_mult:
            raise ValueError("ch_mult must name at least one level")
        for mult in self.ch_mult:
            if (self.ch * mult) % self.norm_groups != 0:
                raise ValueError(
                    f"width ch * mult = {self.ch * mult} is not divisible by "
                    f"norm_groups = {self.norm_groups}"
                )
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm, SiLU, 3x3 conv) x 2, 1x1 skip on width change."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = _group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = _group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nin_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1)
            if in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        """Residual update of ``x``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 q/k/v/out projections and a residual."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _group_norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over all h*w positions of ``x``."""
        n, c, h, w = x.shape
        normed = self.norm(x)
        # N x 1 x HW x C: one head, positions as the sequence.
        q, k, v = (
            proj(normed).reshape(n, 1, c, h * w).transpose(2, 3)
            for proj in (self.q, self.k, self.v)
        )
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(2, 3).reshape(n, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after zero-padding one pixel on the right and bottom (LDM convention)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        """Halve the spatial size."""
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Double the spatial size."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: residual blocks, optional attention after each, optional resampler."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()


class _Middle(nn.Module):
    def __init__(self, channels: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, dropout, groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


def _run_level(level: _Level, h: Tensor) -> Tensor:
    for i, block in enumerate(level.block):
        h = block(h)
        if len(level.attn) > 0:
            h = level.attn[i](h)
    return h


class Encoder(nn.Module):
    """Image (N x in_channels x H x W) to features (N x out_channels x H/f x W/f)."""

    def __init__(self, config: ConvBackboneConfig, out_channels: int) -> None:
        super().__init__()
        config.validate()
        groups = config.norm_groups
        self.conv_in = nn.Conv2d(config.in_channels, config.ch, kernel_size=3, padding=1)
        self.down = nn.ModuleList()
        in_mult = (1, *config.ch_mult)
        res = config.resolution
        block_in = config.ch
        for i_level, mult in enumerate(config.ch_mult):
            level = _Level()
            block_in = config.ch * in_mult[i_level]
            block_out = config.ch * mult
            for _ in range(config.num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out, config.dropout, groups))
                block_in = block_out
                if res in config.encoder_attn_resolutions:
                    level.attn.append(AttnBlock(block_in, groups))
            if i_level != len(config.ch_mult) - 1:
                level.downsample = Downsample(block_in)
                res //= 2
            self.down.append(level)
        self.mid = _Middle(block_in, config.dropout, groups)
        self.norm_out = _group_norm(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` to pre-quantisation features."""
        h = self.conv_in(x)
        for level in self.down:
            h = _run_level(level, h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent features (N x z_channels x h x w) to an image (N x out_channels x h*f x w*f).

    Each level has ``num_res_blocks + 1`` residual blocks, as in LDM.
    """

    def __init__(self, config: ConvBackboneConfig, out_channels: int) -> None:
        super().__init__()
        config.validate()
        groups = config.norm_groups
        num_levels = len(config.ch_mult)
        block_in = config.ch * config.ch_mult[-1]
        res = config.resolution // 2 ** (num_levels - 1)
        self.conv_in = nn.Conv2d(config.z_channels, block_in, kernel_size=3, padding=1)
        self.mid = _Middle(block_in, config.dropout, groups)
        levels: list[_Level] = []
        for i_level in reversed(range(num_levels)):
            level = _Level()
            block_out = config.ch * config.ch_mult[i_level]
            for _ in range(config.num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, block_out, config.dropout, groups))
                block_in = block_out
                if res in config.decoder_attn_resolutions:
                    level.attn.append(AttnBlock(block_in, groups))
            if i_level != 0:
                level.upsample = Upsample(block_in)
                res *= 2
            levels.insert(0, level)
        # Stored finest-first, so ``up.0`` is the full-resolution level as in LDM.
        self.up = nn.ModuleList(levels)
        self.norm_out = _group_norm(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, kernel_size=3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        """Decode latent features to an image."""
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = _run_level(level, h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
