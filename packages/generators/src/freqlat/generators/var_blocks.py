"""The transformer blocks of VAR: AdaLN self-attention blocks, the AdaLN head norm, a KV cache.

Parameter and buffer names follow FoundationVision/VAR ``models/basic_var.py`` so that the
released state dicts load without renaming. The arithmetic follows that file operation by
operation (same order of additions and products), because greedy generation compares logits
whose top two can lie within 1e-4 of each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import Tensor, nn

# Upstream clamps the learnable log attention scale at log(100).
_MAX_LOG_SCALE = math.log(100.0)


@dataclass
class LayerKVCache:
    """Keys and values of the tokens one attention layer has seen so far during generation."""

    keys: Tensor | None = None
    values: Tensor | None = None

    def extend(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append this step's keys and values (N x heads x l x d) and return all of them."""
        if self.keys is not None:
            keys = torch.cat((self.keys, keys), dim=2)
            values = torch.cat((self.values, values), dim=2)
        self.keys, self.values = keys, values
        return keys, values


@dataclass
class KVCache:
    """One :class:`LayerKVCache` per block: the state of one generation run."""

    layers: list[LayerKVCache] = field(default_factory=list)

    @classmethod
    def for_depth(cls, depth: int) -> KVCache:
        """An empty cache for ``depth`` blocks."""
        return cls([LayerKVCache() for _ in range(depth)])


class ScaleAttention(nn.Module):
    """Multi-head self-attention with VAR's biases and optional L2-normalised queries and keys.

    q and v carry learnable biases, k a zero one (kept as the buffer ``zero_k_bias``, part of the
    released state dicts). With ``l2_norm`` q and k are unit vectors and the logits are scaled by
    a learnable per-head factor exp(min(s_h, log 100)), s_h initialised to log 4; without it the
    scale is 0.25 / sqrt(head_dim). Attention runs through ``F.scaled_dot_product_attention``.
    """

    def __init__(self, dim: int, num_heads: int, l2_norm: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.l2_norm = l2_norm
        if l2_norm:
            self.scale = 1.0
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, num_heads, 1, 1), 4.0).log())
        else:
            self.scale = 0.25 / math.sqrt(self.head_dim)
        self.mat_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: Tensor, attn_bias: Tensor | None = None, cache: LayerKVCache | None = None
    ) -> Tensor:
        """Attend over ``x`` (N x L x C) with an additive mask, or over the cache plus ``x``."""
        batch, length, dim = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = F.linear(x, self.mat_qkv.weight, bias).view(
            batch, length, 3, self.num_heads, self.head_dim
        )
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(dim=0)  # each N x heads x L x d
        if self.l2_norm:
            scale = self.scale_mul_1H11.clamp_max(_MAX_LOG_SCALE).exp()
            q = F.normalize(q, dim=-1).mul(scale)
            k = F.normalize(k, dim=-1)
        if cache is not None:
            k, v = cache.extend(k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class AdaLNSelfAttnBlock(nn.Module):
    """Pre-norm attention + MLP block modulated by the class condition (AdaLN).

    Six vectors per sample, (gamma1, gamma2, scale1, scale2, shift1, shift2), come from
    SiLU + Linear of the condition (``ada_lin``) or, with shared AdaLN, from the model's one
    shared projection plus this block's learnable offset ``ada_gss``:
    x += gamma1 * attn(LN(x) * (1 + scale1) + shift1); x += gamma2 * mlp(LN(x) * (1 + scale2) + shift2).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path: float,
        norm_eps: float,
        l2_norm: bool,
        shared_adaln: bool,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.attn = ScaleAttention(dim, num_heads, l2_norm)
        self.ffn = Mlp(dim, round(dim * mlp_ratio), act_layer=partial(nn.GELU, approximate="tanh"))
        self.ln_wo_grad = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.shared_adaln = shared_adaln
        if shared_adaln:
            self.ada_gss = nn.Parameter(torch.randn(1, 1, 6, dim) / dim**0.5)
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(
        self,
        x: Tensor,
        condition: Tensor,
        attn_bias: Tensor | None = None,
        cache: LayerKVCache | None = None,
    ) -> Tensor:
        """``condition``: the class embedding N x C, or the shared projection N x 1 x 6 x C."""
        if self.shared_adaln:
            modulation = self.ada_gss + condition
        else:
            modulation = self.ada_lin(condition).view(-1, 1, 6, self.dim)
        gamma1, gamma2, scale1, scale2, shift1, shift2 = modulation.unbind(2)
        h = self.ln_wo_grad(x).mul(scale1.add(1)).add_(shift1)
        x = x + self.drop_path(self.attn(h, attn_bias, cache).mul_(gamma1))
        h = self.ln_wo_grad(x).mul(scale2.add(1)).add_(shift2)
        return x + self.drop_path(self.ffn(h).mul(gamma2))


class AdaLNBeforeHead(nn.Module):
    """The final LayerNorm modulated by the class condition: LN(x) * (1 + scale) + shift."""

    def __init__(self, dim: int, norm_eps: float) -> None:
        super().__init__()
        self.dim = dim
        self.ln_wo_grad = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Normalise ``x`` (N x L x C) under the class embedding ``condition`` (N x C)."""
        scale, shift = self.ada_lin(condition).view(-1, 1, 2, self.dim).unbind(2)
        return self.ln_wo_grad(x).mul(scale.add(1)).add_(shift)
