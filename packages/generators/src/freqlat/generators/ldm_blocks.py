"""The convolutional pieces of the LDM UNet: timestep embedding, residual block, resamplers.

The upsampler (nearest 2x, then a 3x3 conv named ``conv``) is the tokenizers' LDM one.

They follow CompVis/latent-diffusion ``ldm/modules/diffusionmodules/openaimodel.py`` and
``util.py`` (the guided-diffusion UNet), with upstream's parameter names (``in_layers.2``,
``emb_layers.1``, ``out_layers.3``, ``skip_connection``, ``op``, ``conv``) so that the released
weights load one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from freqlat.generators.ldm_attention import SpatialTransformer
from freqlat.tokenizers.backbone import Upsample

__all__ = [
    "NORM_GROUPS",
    "Downsample",
    "GroupNorm32",
    "ResBlock",
    "UNetStage",
    "Upsample",
    "timestep_embedding",
    "zero_module",
]

NORM_GROUPS = 32


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32 groups, eps 1e-5) computed in float32 and cast back to the input's dtype."""

    def __init__(self, channels: int) -> None:
        super().__init__(NORM_GROUPS, channels)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` in float32."""
        weight, bias = self.weight.float(), self.bias.float()
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def zero_module(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero and return it (zero-initialised outputs)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    return module


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding N x dim of timesteps ``t``: [cos(t f_i), sin(t f_i)].

    f_i = max_period ** (-i / (dim // 2)) for i < dim // 2, in float32; an odd ``dim`` gets a
    zero last column.
    """
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float32, device=t.device) / half
    freqs = torch.exp(-math.log(max_period) * exponents)
    args = t[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class ResBlock(nn.Module):
    """(GroupNorm, SiLU, 3x3 conv), + the projected timestep embedding, (GroupNorm, SiLU,
    dropout, zero-initialised 3x3 conv); a 1x1 skip conv when the width changes."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            GroupNorm32(channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, kernel_size=3, padding=1),
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)),
        )
        self.skip_connection = (
            nn.Identity()
            if out_channels == channels
            else nn.Conv2d(channels, out_channels, kernel_size=1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Residual update of ``x`` (N x C x h x w) conditioned on ``emb`` (N x emb_channels)."""
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    """3x3 conv with stride 2 and padding 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Halve the spatial size."""
        return self.op(x)


class UNetStage(nn.Sequential):
    """One entry of the UNet's block lists: layers run in order, each given what it takes.

    A :class:`ResBlock` gets the timestep embedding, a :class:`SpatialTransformer` the
    cross-attention context, anything else only the features. With ``checkpointing`` the
    residual and transformer layers recompute their activations in the backward pass.
    """

    def forward(  # type: ignore[override]
        self, h: Tensor, emb: Tensor, context: Tensor, checkpointing: bool = False
    ) -> Tensor:
        """Run the stage on features ``h``."""
        recompute = checkpointing and torch.is_grad_enabled()
        for layer in self:
            if isinstance(layer, ResBlock):
                extra: tuple[Tensor, ...] = (emb,)
            elif isinstance(layer, SpatialTransformer):
                extra = (context,)
            else:
                h = layer(h)
                continue
            h = checkpoint(layer, h, *extra, use_reentrant=False) if recompute else layer(h, *extra)
        return h
