"""LightningDiT: the DiT of hustvl/LightningDiT (`models/lightningdit.py`), and its presets.

A class-conditional DiT on tokenizer latents with the upstream release's choices: adaLN-Zero
conditioning on t + y, SwiGLU feed-forward (hidden ``int(2/3 * mlp_ratio * width)``), RMSNorm
(eps 1e-6), 2-D axial rotary embeddings on q and k on top of the fixed sin-cos position table,
optional qk-norm, no learned sigma. The parameter and buffer names are upstream's, so a released
state dict loads without renaming (see :mod:`freqlat.generators.lightningdit_official`).

Time runs from t = 0 (noise) to t = 1 (data); the model predicts the velocity x1 - x0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Mlp, PatchEmbed
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from freqlat.generators.base import Generator
from freqlat.generators.registry import register_presets


@dataclass(frozen=True)
class LightningDiTConfig:
    """A LightningDiT: sizes, and upstream's feature flags (the defaults are the release's).

    ``input_size`` is the latent side (16 for 256 px images through an f16 tokenizer) and
    ``in_channels`` the latent channels (32 for VA-VAE f16d32, 64 for FA-VAE f16d64). The label
    table has ``num_classes + 1`` rows: the last one is the null class of classifier-free
    guidance, and ``class_dropout_prob`` of the labels are replaced by it in training mode.
    (Upstream leaves the null row out when ``class_dropout_prob`` is 0; we keep it, so that
    guidance always has its null class. Every released configuration has 0.1.)
    """

    input_size: int = 16
    patch_size: int = 1
    in_channels: int = 32
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    class_dropout_prob: float = 0.1
    use_qknorm: bool = False
    use_swiglu: bool = True
    use_rope: bool = True
    use_rmsnorm: bool = True
    wo_shift: bool = False
    gradient_checkpointing: bool = False


def sincos_position_table(width: int, grid: int) -> Tensor:
    """The fixed 2-D sin-cos position table (grid*grid x width), as DiT and LightningDiT build it.

    Token ``n = row * grid + col`` gets ``[sin(col w), cos(col w), sin(row w), cos(row w)]`` with
    ``w_k = 10000^(-k / (width / 4))``, k < width / 4: the first half of the channels encodes the
    column (upstream's meshgrid puts w first), computed in float64 and stored in float32.
    """
    if width % 4:
        raise ValueError(f"the sin-cos table needs a width divisible by 4, got {width}")
    omega = 1.0 / 10000 ** (torch.arange(width // 4, dtype=torch.float64) / (width / 4))
    coords = torch.arange(grid, dtype=torch.float64)
    row, col = torch.meshgrid(coords, coords, indexing="ij")
    parts = []
    for pos in (col.reshape(-1), row.reshape(-1)):
        angle = pos[:, None] * omega[None]
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, dim=1).float()


class AxialRoPE(nn.Module):
    """2-D axial rotary embedding of EVA-02 (`VisionRotaryEmbeddingFast`) as LightningDiT uses it.

    Of a head's ``head_dim`` channels the first half rotates with the token's row, the second
    with its column; channel pairs (2i, 2i+1) rotate together by ``pos * theta^(-2k/(head_dim/2))``
    where k indexes the pair within its half. The tables ``freqs_cos``/``freqs_sin``
    (tokens x head_dim) are buffers in the state dict, as upstream's are.
    """

    def __init__(self, head_dim: int, grid: int, theta: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"axial RoPE needs a head dim divisible by 4, got {head_dim}")
        half = head_dim // 2
        # float32 throughout, in upstream's order of operations, so the tables match its own.
        freqs = 1.0 / (theta ** (torch.arange(0, half, 2)[: half // 2].float() / half))
        pos = torch.arange(grid) / grid * grid
        angles = (pos[:, None] * freqs[None]).repeat_interleave(2, dim=-1)  # grid x half
        table = torch.cat(
            [
                angles[:, None, :].expand(grid, grid, half),
                angles[None, :, :].expand(grid, grid, half),
            ],
            dim=-1,
        ).reshape(grid * grid, head_dim)
        self.register_buffer("freqs_cos", table.cos())
        self.register_buffer("freqs_sin", table.sin())

    def forward(self, x: Tensor) -> Tensor:
        """Rotate ``x`` (... x tokens x head_dim)."""
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * self.freqs_cos + rotated * self.freqs_sin


def _norm(width: int, rms: bool) -> nn.Module:
    """RMSNorm (eps 1e-6, learned scale) or LayerNorm without affine (eps 1e-6), as upstream."""
    if rms:
        return nn.RMSNorm(width, eps=1e-6)
    return nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)


class Attention(nn.Module):
    """Multi-head self-attention with optional qk-norm and RoPE, through SDPA."""

    def __init__(self, width: int, num_heads: int, qk_norm: bool, rms: bool) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        head_dim = width // num_heads
        self.qkv = nn.Linear(width, 3 * width, bias=True)
        # upstream's qk-norm is RMSNorm (eps 1e-6) or an affine LayerNorm with torch's eps 1e-5
        norm = (lambda: nn.RMSNorm(head_dim, eps=1e-6)) if rms else (lambda: nn.LayerNorm(head_dim))
        self.q_norm = norm() if qk_norm else nn.Identity()
        self.k_norm = norm() if qk_norm else nn.Identity()
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, rope: AxialRoPE | None) -> Tensor:
        """Attend over the tokens of ``x`` (N x tokens x width)."""
        n, tokens, width = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rope(q), rope(k)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, tokens, width))


class SwiGLU(nn.Module):
    """SwiGLU feed-forward: ``w3(silu(a) * b)`` with ``[a, b] = w12(x)`` (upstream's fused layout)."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(width, 2 * hidden)
        self.w3 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the feed-forward to ``x`` (... x width)."""
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


def modulate(x: Tensor, shift: Tensor | None, scale: Tensor) -> Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample (N x width) scale and shift."""
    x = x * (1 + scale.unsqueeze(1))
    return x if shift is None else x + shift.unsqueeze(1)


class LightningDiTBlock(nn.Module):
    """A transformer block with adaLN-Zero gates (six modulations, or four with ``wo_shift``)."""

    def __init__(self, config: LightningDiTConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.norm1 = _norm(width, config.use_rmsnorm)
        self.attn = Attention(width, config.num_heads, config.use_qknorm, config.use_rmsnorm)
        self.norm2 = _norm(width, config.use_rmsnorm)
        mlp_hidden = int(width * config.mlp_ratio)
        if config.use_swiglu:
            self.mlp = SwiGLU(width, int(2 / 3 * mlp_hidden))
        else:
            self.mlp = Mlp(width, mlp_hidden, act_layer=lambda: nn.GELU(approximate="tanh"))
        self.wo_shift = config.wo_shift
        chunks = 4 if config.wo_shift else 6
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, chunks * width))

    def forward(self, x: Tensor, c: Tensor, rope: AxialRoPE | None) -> Tensor:
        """Update tokens ``x`` (N x tokens x width) under conditioning ``c`` (N x width)."""
        mods = self.adaLN_modulation(c)
        if self.wo_shift:
            scale_msa, gate_msa, scale_mlp, gate_mlp = mods.chunk(4, dim=1)
            shift_msa = shift_mlp = None
        else:
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods.chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(
            modulate(self.norm1(x), shift_msa, scale_msa), rope
        )
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    """Final adaLN (shift and scale) and the linear map from tokens to patches."""

    def __init__(self, config: LightningDiTConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.norm_final = _norm(width, config.use_rmsnorm)
        self.linear = nn.Linear(width, config.patch_size**2 * config.in_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """Patch values (N x tokens x p*p*C) of tokens ``x`` under conditioning ``c``."""
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class TimestepEmbedder(nn.Module):
    """DiT's timestep embedding: 256 sinusoidal features ([cos, sin], period 10^4) and an MLP."""

    frequency_size = 256

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(self.frequency_size, width), nn.SiLU(), nn.Linear(width, width)
        )

    @staticmethod
    def sinusoid(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
        """``[cos(t f_k), sin(t f_k)]`` with ``f_k = max_period^(-k / (dim / 2))`` (N x dim)."""
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = t[:, None].float() * freqs[None]
        return torch.cat([args.cos(), args.sin()], dim=-1)

    def forward(self, t: Tensor) -> Tensor:
        """Embed times ``t`` (N,)."""
        return self.mlp(self.sinusoid(t, self.frequency_size))


class LabelEmbedder(nn.Module):
    """Class embedding table with the null class ``num_classes`` as its last row."""

    def __init__(self, num_classes: int, width: int, dropout_prob: float) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob
        self.embedding_table = nn.Embedding(num_classes + 1, width)

    def forward(self, labels: Tensor, drop: bool) -> Tensor:
        """Embed ``labels``; with ``drop``, each is replaced by the null class with the dropout
        probability (drawn from torch's global generator, as upstream draws it)."""
        if drop and self.dropout_prob > 0:
            dropped = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
            labels = torch.where(dropped, self.num_classes, labels)
        return self.embedding_table(labels)


class LightningDiT(Generator):
    """LightningDiT: ``model(x, t, y)`` -> the velocity at ``x`` (N x C x H x W), shaped like x.

    ``t`` (N,) is in [0, 1], 0 = noise and 1 = data; ``y`` (N,) int64 labels, the null class
    being ``num_classes``. Labels are dropped only in training mode. With
    ``gradient_checkpointing`` each block's activations are recomputed in the backward pass.
    """

    architecture = "lightningdit"
    config_class = LightningDiTConfig

    def __init__(self, config: LightningDiTConfig) -> None:
        super().__init__(config)
        if config.input_size % config.patch_size:
            raise ValueError(
                f"input_size {config.input_size} is not divisible by patch_size {config.patch_size}"
            )
        width = config.hidden_size
        grid = config.input_size // config.patch_size
        self.x_embedder = PatchEmbed(
            config.input_size, config.patch_size, config.in_channels, width, bias=True
        )
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = LabelEmbedder(config.num_classes, width, config.class_dropout_prob)
        # A parameter that is never trained, as upstream has it: it is in the state dict and in
        # the published parameter counts (675.26M for XL/1).
        self.pos_embed = nn.Parameter(sincos_position_table(width, grid)[None], requires_grad=False)
        head_dim = width // config.num_heads
        self.feat_rope = AxialRoPE(head_dim, grid) if config.use_rope else None
        self.blocks = nn.ModuleList(LightningDiTBlock(config) for _ in range(config.depth))
        self.final_layer = FinalLayer(config)
        self.initialize_weights()

    @property
    def null_class(self) -> int:
        """The label of the unconditional (null) class."""
        return self.config.num_classes

    @property
    def in_channels(self) -> int:
        """Latent channels of the model's input and output."""
        return self.config.in_channels

    def initialize_weights(self) -> None:
        """DiT's initialisation: Xavier-uniform linears and patch projection, N(0, 0.02) label
        table and timestep MLP, zeros for every adaLN modulation and the output layer."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        proj = self.x_embedder.proj
        nn.init.xavier_uniform_(proj.weight.view(proj.weight.shape[0], -1))
        nn.init.zeros_(proj.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for layer in [*(b.adaLN_modulation[-1] for b in self.blocks), self.final_layer.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)

    def unpatchify(self, x: Tensor) -> Tensor:
        """Tokens of patch values (N x h*w x p*p*C) back to N x C x h*p x w*p."""
        p, c = self.config.patch_size, self.config.in_channels
        grid = self.config.input_size // p
        x = x.reshape(x.shape[0], grid, grid, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], c, grid * p, grid * p)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """The velocity at ``x`` for times ``t`` and labels ``y`` (see the class docstring)."""
        tokens = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y, self.training)
        for block in self.blocks:
            if self.config.gradient_checkpointing and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, c, self.feat_rope, use_reentrant=False)
            else:
                tokens = block(tokens, c, self.feat_rope)
        return self.unpatchify(self.final_layer(tokens, c))


def _size(depth: int, width: int, heads: int, patch: int) -> LightningDiTConfig:
    return LightningDiTConfig(depth=depth, hidden_size=width, num_heads=heads, patch_size=patch)


# hustvl/LightningDiT models/lightningdit.py LightningDiT_* factories, with the release's flags
# (configs/reproductions/*.yaml: SwiGLU, RoPE, RMSNorm on; qk-norm off; 32 latent channels).
PRESETS: dict[str, LightningDiTConfig] = {
    "lightningdit-b-1": _size(12, 768, 12, 1),
    "lightningdit-b-2": _size(12, 768, 12, 2),
    "lightningdit-l-2": _size(24, 1024, 16, 2),
    "lightningdit-xl-1": _size(28, 1152, 16, 1),
    "lightningdit-xl-2": _size(28, 1152, 16, 2),
    # a few narrow blocks for CPU tests and the main job
    "lightningdit-tiny": _size(4, 128, 4, 1),
}

register_presets(LightningDiT, PRESETS)
