"""LDM: the class-conditional UNet of CompVis/latent-diffusion, on any tokenizer's latents.

The architecture is upstream's ``UNetModel`` (``ldm/modules/diffusionmodules/openaimodel.py``)
as ``configs/latent-diffusion/cin256-v2.yaml`` builds it: a timestep-conditioned residual UNet
whose attention levels are spatial transformers cross-attending to a class embedding (upstream's
``ClassEmbedder``: a 1001-row table, the last row the null class, giving an N x 1 x 512
context). Parameter names are upstream's, so the released ``cin256-v2`` weights load one to one
(``freqlat.generators.ldm_official``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from freqlat.generators.base import Generator
from freqlat.generators.ddpm import DDPMSchedule, DDPMScheduleConfig
from freqlat.generators.ldm_attention import SpatialTransformer
from freqlat.generators.ldm_blocks import (
    NORM_GROUPS,
    Downsample,
    GroupNorm32,
    ResBlock,
    UNetStage,
    Upsample,
    timestep_embedding,
    zero_module,
)
from freqlat.generators.registry import register_presets


@dataclass(frozen=True)
class LDMConfig:
    """Shape of an LDM UNet (defaults: the released cin256-v2 model on 64 x 64 x 3 latents).

    - ``channel_mult``: width multiplier per level; each level but the last halves the size.
    - ``attention_resolutions``: the downsampling factors (1, 2, 4, ...) whose levels get a
      spatial transformer after every residual block (and the middle block always has one).
    - heads: ``head_channels`` channels per head when set, else ``num_heads`` heads of
      width / num_heads channels (cin256-v2: one head).
    - ``num_classes`` classes plus the null class ``num_classes``; in train mode labels are
      replaced by the null class with probability ``class_dropout_prob`` (for guidance).
    - ``checkpointing``: recompute residual and transformer activations in the backward pass.
    - ``schedule``: the DDPM schedule the model is trained and sampled with.
    """

    latent_channels: int = 3
    model_channels: int = 192
    channel_mult: tuple[int, ...] = (1, 2, 3, 5)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (8, 4, 2)
    num_heads: int = 1
    head_channels: int | None = None
    transformer_depth: int = 1
    context_dim: int = 512
    num_classes: int = 1000
    class_dropout_prob: float = 0.1
    dropout: float = 0.0
    checkpointing: bool = False
    schedule: DDPMScheduleConfig = field(default_factory=DDPMScheduleConfig)

    @property
    def downsample(self) -> int:
        """Total downsampling of the UNet: latent sides must be divisible by it."""
        return 2 ** (len(self.channel_mult) - 1)

    def heads_for(self, channels: int) -> tuple[int, int]:
        """(heads, channels per head) of a transformer on ``channels`` channels."""
        if self.head_channels is not None:
            return channels // self.head_channels, self.head_channels
        return self.num_heads, channels // self.num_heads

    def validate(self) -> None:
        """Raise ValueError for shapes the UNet cannot be built with."""
        if not self.channel_mult or self.num_res_blocks < 1 or self.latent_channels < 1:
            raise ValueError(
                "channel_mult must name a level, num_res_blocks and latent_channels must be >= 1"
            )
        widths = {self.model_channels * m for m in self.channel_mult}
        bad = sorted(w for w in widths if w % NORM_GROUPS)
        if bad:
            raise ValueError(f"widths {bad} are not divisible by the {NORM_GROUPS} norm groups")
        factors = [2**level for level in range(len(self.channel_mult))]
        unknown = sorted(set(self.attention_resolutions) - set(factors))
        if unknown:
            raise ValueError(
                f"attention_resolutions {unknown} name no level; the levels' downsampling "
                f"factors are {factors}"
            )
        divisor = self.head_channels if self.head_channels is not None else self.num_heads
        if divisor < 1 or any(w % divisor for w in widths):
            raise ValueError(
                f"every width {sorted(widths)} must be divisible by "
                f"{'head_channels' if self.head_channels is not None else 'num_heads'} = {divisor}"
            )
        if not 0.0 <= self.class_dropout_prob < 1.0:
            raise ValueError(f"class_dropout_prob must be in [0, 1), got {self.class_dropout_prob}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        self.schedule.validate()


class ClassEmbedder(nn.Module):
    """A (num_classes + 1) x dim table; labels N -> context N x 1 x dim. Row num_classes is null."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes + 1, dim)

    def forward(self, labels: Tensor) -> Tensor:
        """The cross-attention context of ``labels``."""
        return self.embedding(labels)[:, None]


class LDMUNet(Generator):
    """The LDM denoiser: ``model(x, t, y)`` -> predicted noise eps, the shape of ``x``.

    ``x`` is N x latent_channels x h x w (h, w divisible by ``config.downsample``), ``t`` int64
    timesteps in [0, T), ``y`` int64 labels in [0, num_classes] (num_classes = null class).
    """

    architecture = "ldm-unet"
    config_class = LDMConfig

    def __init__(self, config: LDMConfig) -> None:
        super().__init__(config)
        config.validate()
        channels = config.model_channels
        emb_channels = 4 * channels
        self.time_embed = nn.Sequential(
            nn.Linear(channels, emb_channels), nn.SiLU(), nn.Linear(emb_channels, emb_channels)
        )
        self.class_embedder = ClassEmbedder(config.num_classes, config.context_dim)
        self.input_blocks = nn.ModuleList(
            [UNetStage(nn.Conv2d(config.latent_channels, channels, kernel_size=3, padding=1))]
        )
        skip_widths = [channels]
        width, factor = channels, 1
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                layers = [ResBlock(width, emb_channels, channels * mult, config.dropout)]
                width = channels * mult
                if factor in config.attention_resolutions:
                    layers.append(self._transformer(width))
                self.input_blocks.append(UNetStage(*layers))
                skip_widths.append(width)
            if level != len(config.channel_mult) - 1:
                self.input_blocks.append(UNetStage(Downsample(width)))
                skip_widths.append(width)
                factor *= 2
        self.middle_block = UNetStage(
            ResBlock(width, emb_channels, width, config.dropout),
            self._transformer(width),
            ResBlock(width, emb_channels, width, config.dropout),
        )
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for index in range(config.num_res_blocks + 1):
                skip = skip_widths.pop()
                layers = [ResBlock(width + skip, emb_channels, channels * mult, config.dropout)]
                width = channels * mult
                if factor in config.attention_resolutions:
                    layers.append(self._transformer(width))
                if level and index == config.num_res_blocks:
                    layers.append(Upsample(width))
                    factor //= 2
                self.output_blocks.append(UNetStage(*layers))
        self.out = nn.Sequential(
            GroupNorm32(width),
            nn.SiLU(),
            zero_module(nn.Conv2d(width, config.latent_channels, kernel_size=3, padding=1)),
        )
        self._schedule: DDPMSchedule | None = None

    def _transformer(self, width: int) -> SpatialTransformer:
        heads, head_dim = self.config.heads_for(width)
        return SpatialTransformer(
            width,
            heads,
            head_dim,
            self.config.context_dim,
            depth=self.config.transformer_depth,
            dropout=self.config.dropout,
        )

    @property
    def latent_channels(self) -> int:
        """Channels of the latents the model denoises."""
        return self.config.latent_channels

    @property
    def null_class(self) -> int:
        """The unconditional label (``num_classes``)."""
        return self.config.num_classes

    @property
    def schedule(self) -> DDPMSchedule:
        """The DDPM schedule of ``config.schedule`` (built once, CPU tensors)."""
        if self._schedule is None:
            self._schedule = DDPMSchedule(self.config.schedule)
        return self._schedule

    def sample_label_drop(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """A bool mask of ``batch`` labels to replace by the null class (train-time dropout)."""
        device = generator.device if generator is not None else self.out[2].weight.device
        draw = torch.rand(batch, generator=generator, device=device)
        return draw < self.config.class_dropout_prob

    def _check_inputs(self, x: Tensor, t: Tensor, y: Tensor) -> None:
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.latent_channels:
            raise ValueError(
                f"expected latents N x {c.latent_channels} x h x w, got {tuple(x.shape)}"
            )
        if x.shape[2] % c.downsample or x.shape[3] % c.downsample:
            raise ValueError(
                f"latent size {tuple(x.shape[2:])} is not divisible by the UNet's "
                f"downsampling factor {c.downsample}"
            )
        for name, value in (("t", t), ("y", y)):
            if value.shape != (x.shape[0],) or value.is_floating_point() or value.is_complex():
                raise ValueError(
                    f"{name} must hold {x.shape[0]} integers (one per latent), got "
                    f"{value.dtype} of shape {tuple(value.shape)}"
                )

    def forward(self, x: Tensor, t: Tensor, y: Tensor, drop: Tensor | None = None) -> Tensor:
        """Predicted noise for latents ``x`` at timesteps ``t`` with labels ``y``.

        In train mode labels are dropped to the null class where ``drop`` (a bool mask) is
        true, or at random with ``class_dropout_prob`` when no mask is given; in eval mode only
        an explicit ``drop`` drops them.
        """
        self._check_inputs(x, t, y)
        if drop is None and self.training and self.config.class_dropout_prob > 0:
            drop = self.sample_label_drop(x.shape[0]).to(y.device)
        if drop is not None:
            y = torch.where(drop.to(y.device), torch.full_like(y, self.null_class), y)
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels))
        context = self.class_embedder(y)
        checkpointing = self.config.checkpointing
        skips = []
        h = x
        for stage in self.input_blocks:
            h = stage(h, emb, context, checkpointing)
            skips.append(h)
        h = self.middle_block(h, emb, context, checkpointing)
        for stage in self.output_blocks:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb, context, checkpointing)
        return self.out(h)


def _f16(latent_channels: int) -> LDMConfig:
    # Sized for 16 x 16 latents of f16 tokenizers. We follow upstream's own class-conditional
    # model for the smaller (32 x 32) latent grid, models/ldm/cin256/config.yaml: 256 channels,
    # three levels (1, 2, 4), a transformer at every level, 32 channels per head; about the
    # parameter count of cin256-v2 (395M vs 401M). On 16 x 16 it runs at 16, 8 and 4 px: a
    # fourth level would stop at 2 x 2, where 3x3 convs see mostly padding, and attention over
    # 256 tokens at the finest level costs less than cin256-v2's over 1024 at 32 x 32.
    return LDMConfig(
        latent_channels=latent_channels,
        model_channels=256,
        channel_mult=(1, 2, 4),
        attention_resolutions=(1, 2, 4),
        head_channels=32,
    )


PRESETS: dict[str, LDMConfig] = {
    # Exactly the released class-conditional ImageNet model on its VQ-f4 64 x 64 x 3 latents
    # (configs/latent-diffusion/cin256-v2.yaml; one attention head of full width).
    "ldm-cin256-v2": LDMConfig(),
    "ldm-f16d16": _f16(16),  # the wavelet KL-VAE (kl-vae-wav-f16d16) and MAR's KL-16
    "ldm-f16d32": _f16(32),  # VA-VAE (va-vae-f16d32) and the equal-budget FA-VAE
    "ldm-f16d64": _f16(64),  # FA-VAE as published (fa-vae-f16d64)
    # CPU tests and demos: two levels, one block each, attention on the lower one.
    "ldm-tiny": LDMConfig(
        latent_channels=16,
        model_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(2,),
        head_channels=32,
        context_dim=32,
    ),
}

register_presets(LDMUNet, PRESETS)
