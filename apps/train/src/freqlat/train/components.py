"""Build what a tokenizer run trains: model, loss, optimisers, data, checkpoint state.

Everything here is a pure function of the resolved :class:`TokenizerTrainConfig` (plus the
distributed context), so a restarted run rebuilds the same objects before loading its checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from freqlat.core import DistributedContext, ResumableLoader, open_dataset
from freqlat.tokenizers import (
    FrequencyAwareVAE,
    MultiScaleVQVAE,
    Tokenizer,
    WaveletMultiScaleVQVAE,
    create_tokenizer,
)
from freqlat.tokenizers.losses import (
    AutoencoderLoss,
    AutoencoderLossConfig,
    FrequencyAwareLossConfig,
    TokenizerLoss,
    VFLoss,
    VFLossConfig,
    WaveletVQLossConfig,
    create_tokenizer_loss,
    load_foundation_model,
)
from freqlat.train.config import TokenizerTrainConfig


def build_model(config: TokenizerTrainConfig) -> Tokenizer:
    """The tokenizer of ``config.preset`` with ``model_overrides``, freshly initialised."""
    return create_tokenizer(config.preset, **config.model_overrides)


def uses_vf(config: TokenizerTrainConfig, model: Tokenizer) -> bool:
    """Whether the run trains with the VF loss: ``use_vf``, or by default for VA-VAE and FA-VAE."""
    if config.use_vf is not None:
        return config.use_vf
    return isinstance(model, FrequencyAwareVAE) or config.preset.startswith("va-vae")


def build_perceptual(config: TokenizerTrainConfig) -> nn.Module | None:
    """LPIPS (VGG, v0.1) when ``perceptual_weight > 0``; its weights must be on disk.

    As a loss it takes the decoder's unclamped output, which may leave [-1, 1]: the metric's
    range check is off (upstream LPIPS has none either).
    """
    if config.perceptual_weight == 0:
        return None
    from freqlat.metrics import LPIPS

    return LPIPS("vgg", "0.1", trunk_path=config.lpips_trunk, check_range=False)


def build_loss(
    config: TokenizerTrainConfig,
    model: Tokenizer,
    perceptual: nn.Module | None,
    foundation: nn.Module | None,
) -> TokenizerLoss:
    """The tokenizer's training loss with the run's weights and discriminator settings."""
    branch: dict[str, Any] = {
        "kl_weight": config.kl_weight,
        "codebook_weight": config.codebook_weight,
        "disc_start": config.disc_start,
        "disc_weight": config.disc_weight,
        "disc_factor": config.disc_factor,
        "disc_base_channels": config.disc_base_channels,
    }
    vf = uses_vf(config, model)
    if isinstance(model, FrequencyAwareVAE):
        loss_config = FrequencyAwareLossConfig(
            low=AutoencoderLossConfig(
                perceptual_weight=config.perceptual_weight, disc_layers=config.disc_layers, **branch
            ),
            high=AutoencoderLossConfig(
                perceptual_weight=0.0,
                disc_in_channels=model.high.image_channels,
                disc_layers=config.high_disc_layers,
                **branch,
            ),
            low_vf=VFLossConfig(weight=config.vf_weight) if vf else None,
            band_weight=config.band_weight,
            mask_weight=config.mask_weight,
        )
        return create_tokenizer_loss(
            model, perceptual=perceptual, foundation=foundation, use_vf=vf, config=loss_config
        )
    if config.band_weight > 0 or config.mask_weight > 0:
        raise ValueError("band_weight and mask_weight apply to FA-VAE presets only")
    if isinstance(model, WaveletMultiScaleVQVAE):
        return create_tokenizer_loss(
            model,
            perceptual=perceptual,
            use_vf=vf,
            config=WaveletVQLossConfig(
                codebook_weight=config.codebook_weight,
                perceptual_weight=config.perceptual_weight,
                disc_weight=config.disc_weight,
                disc_base_channels=config.disc_base_channels,
                disc_layers=config.disc_layers,
                disc_start=config.disc_start,
                disc_factor=config.disc_factor,
            ),
        )
    objective = "vq" if isinstance(model, MultiScaleVQVAE) else "kl"
    loss_config = AutoencoderLossConfig(
        objective=objective,
        perceptual_weight=config.perceptual_weight,
        disc_layers=config.disc_layers,
        **branch,
    )
    vf_loss = None
    if vf:
        if foundation is None:
            raise ValueError("the VF loss needs the foundation model")
        vf_config = VFLossConfig(latent_channels=model.latent_channels, weight=config.vf_weight)
        vf_loss = VFLoss(vf_config, foundation)
    return AutoencoderLoss(loss_config, perceptual, vf_loss)


def build_training_loss(
    config: TokenizerTrainConfig, model: Tokenizer, device: torch.device
) -> TokenizerLoss:
    """:func:`build_loss` with LPIPS and DINOv2 loaded from disk as the config asks."""
    perceptual = build_perceptual(config)
    foundation = None
    if uses_vf(config, model):
        foundation = load_foundation_model(config.foundation_weights)
    return build_loss(config, model, perceptual, foundation).to(device)


def build_optimizer(params: list[nn.Parameter], lr: float, config: TokenizerTrainConfig):
    """AdamW (Adam when ``weight_decay`` is 0) with the run's betas."""
    return torch.optim.AdamW(
        params, lr=lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
    )


def build_loader(config: TokenizerTrainConfig, ctx: DistributedContext) -> ResumableLoader:
    """The endless, resumable, sharded stream of training batches with random flips."""
    dataset = open_dataset(
        config.data, "train", config.image_size, skip_bad_images=config.skip_bad_images
    )
    return ResumableLoader(
        dataset,
        config.batch_size,
        seed=config.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        random_flip=True,
        num_workers=config.num_workers,
        pin_memory=ctx.device.type == "cuda",
    )


def grid_batch(config: TokenizerTrainConfig) -> Tensor:
    """The fixed validation images shown in every reconstruction grid."""
    dataset = open_dataset(
        config.data, "val", config.image_size, skip_bad_images=config.skip_bad_images
    )
    count = min(config.grid_images, len(dataset))
    return torch.stack([dataset[i][0] for i in range(count)])


class LossState:
    """Checkpoint adapter for a loss: only what it trains, never the frozen LPIPS / DINOv2."""

    def __init__(self, loss: TokenizerLoss) -> None:
        self.loss = loss

    def state_dict(self) -> dict[str, Tensor]:
        """The loss's trainable state (logvar, VF projection, discriminators with BatchNorm)."""
        return self.loss.trainable_state_dict()

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Load a state written by :meth:`state_dict` (missing or extra keys are an error)."""
        self.loss.load_trainable_state_dict(dict(state))
