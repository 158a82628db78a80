"""The LDM UNet's attention: a spatial transformer with self- and cross-attention.

After CompVis/latent-diffusion ``ldm/modules/attention.py`` (``SpatialTransformer``,
``BasicTransformerBlock``, ``CrossAttention``, GEGLU ``FeedForward``), with upstream's parameter
names; attention runs through ``F.scaled_dot_product_attention`` (scale 1/sqrt(head_dim), as
upstream's explicit softmax).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class CrossAttention(nn.Module):
    """Multi-head attention of ``x`` (N x L x query_dim) over ``context`` (N x M x context_dim).

    Without a context it is self-attention. q, k, v have no bias; the output projection has one.
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        head_dim: int,
        context_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Attend from every position of ``x`` to every position of ``context`` (or ``x``)."""
        context = x if context is None else context
        # (N, L, heads * d) -> (N, heads, L, d): the inner width splits head-major, as upstream.
        q, k, v = (
            proj(source).unflatten(-1, (self.heads, -1)).transpose(1, 2)
            for proj, source in ((self.to_q, x), (self.to_k, context), (self.to_v, context))
        )
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).flatten(2))


class GEGLU(nn.Module):
    """Linear to 2 x ``dim_out``, then value * GELU(gate) (exact erf GELU)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: Tensor) -> Tensor:
        """Gated projection of ``x``."""
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU to 4 x dim, dropout, linear back to dim."""

    def __init__(self, dim: int, dropout: float = 0.0, mult: int = 4) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        """Position-wise MLP."""
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-LayerNorm block: self-attention, cross-attention to the context, GEGLU MLP."""

    def __init__(
        self, dim: int, heads: int, head_dim: int, context_dim: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, head_dim, dropout=dropout)
        self.ff = FeedForward(dim, dropout=dropout)
        self.attn2 = CrossAttention(dim, heads, head_dim, context_dim=context_dim, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """Update the token sequence ``x`` (N x L x dim)."""
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """GroupNorm (eps 1e-6), 1x1 conv in, ``depth`` transformer blocks over the h*w positions,
    zero-initialised 1x1 conv out, plus the input."""

    def __init__(
        self,
        channels: int,
        heads: int,
        head_dim: int,
        context_dim: int,
        depth: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, head_dim, context_dim, dropout)
            for _ in range(depth)
        )
        self.proj_out = nn.Conv2d(inner, channels, kernel_size=1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """Residual update of features ``x`` (N x C x h x w) given ``context`` (N x M x D)."""
        n, _, height, width = x.shape
        h = self.proj_in(self.norm(x))
        inner = h.shape[1]
        h = h.flatten(2).transpose(1, 2)
        for block in self.transformer_blocks:
            h = block(h, context)
        h = h.transpose(1, 2).reshape(n, inner, height, width)
        return x + self.proj_out(h)
