"""The one typed config of a tokenizer training run: preset defaults, CLI overrides, config.json.

:func:`resolve_config` starts from :func:`preset_defaults` (the paper recipe for a paper preset,
a small CPU recipe for a ``-tiny`` preset), applies ``key=value`` overrides with their types
checked against :class:`TokenizerTrainConfig` (:mod:`freqlat.core.config`), and validates the
result. The resolved config is written to ``<run_dir>/config.json``; a restarted run must
resolve to the same config (the launch keys may change).

This module imports neither torch nor the tokenizers package until a config is validated, so
``freqlat-train tokenizer --help`` answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqlat.core.config import (
    CONFIG_FILE,
    build_config,
    config_field,
    config_keys,
    config_to_dict,
    read_config_json,
    typed_values,
    write_config_json,
)
from freqlat.core.launch_options import LaunchOptions
from freqlat.core.recipe import LR_SCHEDULES, PRECISIONS

EMBEDDED = "embedded"


@dataclass
class TokenizerTrainConfig:
    """Every knob of a tokenizer training run, resolved before anything starts.

    Model: ``preset`` (a ``freqlat.tokenizers`` preset) and ``model_overrides`` (passed to
    ``create_tokenizer``). Data: ``data`` is ``"embedded"``, an ImageNet-layout root or any image
    folder; ``batch_size`` is per process. Loss: the LDM autoencoder loss of the tokenizers
    package; ``perceptual_weight > 0`` needs the LPIPS VGG weights, ``use_vf`` the DINOv2
    weights (``foundation_weights`` or the default cache); both are never replaced by random
    weights. ``high_disc_layers`` is the FA-VAE high branch's PatchGAN depth. Schedule: a linear
    warm-up then ``lr_schedule``. Launch: :class:`freqlat.core.LaunchOptions`, embedded (its
    fields are keys of this config).
    """

    preset: str = config_field(help="the freqlat.tokenizers preset to train, e.g. fa-vae-f16d64")
    run_dir: str = config_field(
        help="run directory: config.json, checkpoints, logs (default: runs/<preset>)"
    )
    data: str = config_field(
        EMBEDDED, help="'embedded' (scikit-image's photographs), an ImageNet root or a folder"
    )
    image_size: int = config_field(256, help="training crop side in pixels")
    model_overrides: dict[str, Any] = config_field(
        default_factory=dict, help='create_tokenizer overrides of the preset, e.g. {"ch": 64}'
    )
    skip_bad_images: bool = config_field(False, help="skip undecodable images instead of failing")
    num_workers: int = config_field(4, help="DataLoader worker processes per training process")
    seed: int = config_field(0, help="seed of the weights, the data order and the flips")
    steps: int = config_field(100_000, help="training steps (optimiser updates)")
    batch_size: int = config_field(16, help="images per process and step")
    lr: float = config_field(1e-4, help="autoencoder learning rate")
    beta1: float = config_field(0.5, help="Adam beta1 of both optimisers")
    beta2: float = config_field(0.9, help="Adam beta2 of both optimisers")
    weight_decay: float = config_field(0.0, help="AdamW weight decay (0: Adam)")
    lr_schedule: str = config_field(
        "constant", help="LR schedule after the warm-up", choices=LR_SCHEDULES
    )
    warmup_steps: int = config_field(0, help="linear LR warm-up steps")
    min_lr_ratio: float = config_field(0.0, help="cosine schedule's final LR / base LR")
    grad_clip: float = config_field(0.0, help="gradient-norm clipping (0: off)")
    precision: str = config_field("fp32", help="training precision", choices=PRECISIONS)
    ema_decay: float = config_field(0.9999, help="decay of the EMA of the tokenizer's weights")
    find_unused_parameters: bool = config_field(False, help="DDP's find_unused_parameters")
    perceptual_weight: float = config_field(
        1.0, help="LPIPS (VGG) weight; > 0 needs torchvision's VGG16 weights"
    )
    lpips_trunk: str | None = config_field(
        None, help="the VGG16 weights file (none: the torch hub cache)"
    )
    use_vf: bool | None = config_field(
        None, help="train with VA-VAE's VF loss (none: on for VA-VAE and FA-VAE presets)"
    )
    foundation_weights: str | None = config_field(
        None, help="DINOv2 ViT-L/14 weights for the VF loss (none: the freqlat weights cache)"
    )
    vf_weight: float = config_field(0.1, help="VF loss weight")
    kl_weight: float = config_field(1e-6, help="KL term weight (KL models)")
    codebook_weight: float = config_field(1.0, help="VQ loss weight (VQ models)")
    disc_start: int = config_field(5001, help="step from which the GAN terms are on")
    disc_weight: float = config_field(0.5, help="scale of the adaptive GAN weight")
    disc_factor: float = config_field(1.0, help="GAN factor once the discriminator is on")
    disc_base_channels: int = config_field(64, help="PatchGAN channels of the first layer")
    disc_layers: int = config_field(3, help="PatchGAN depth (image discriminator)")
    high_disc_layers: int = config_field(3, help="PatchGAN depth of FA-VAE's detail-band branch")
    disc_lr: float | None = config_field(None, help="discriminator learning rate (none: lr)")
    band_weight: float = config_field(0.0, help="FA-VAE: per-band wavelet loss weight")
    mask_weight: float = config_field(0.0, help="FA-VAE: detail-energy mask loss weight")
    log_every: int = config_field(50, help="steps between log lines and tensorboard scalars")
    grid_every: int = config_field(1000, help="steps between reconstruction grids")
    grid_images: int = config_field(8, help="validation images in each grid")
    checkpoint_every: int = config_field(1000, help="steps between checkpoints")
    keep_checkpoints: int = config_field(3, help="newest checkpoints kept")
    launch: LaunchOptions = config_field(
        default_factory=LaunchOptions, help="where and how the run is launched"
    )

    def __post_init__(self) -> None:
        from freqlat.tokenizers import list_tokenizers, preset_config

        if self.preset not in list_tokenizers():
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {list_tokenizers()}")
        preset_config(self.preset, **self.model_overrides)  # unknown model keys raise here
        positive = ("image_size", "steps", "batch_size", "log_every", "grid_every")
        positive += ("checkpoint_every", "keep_checkpoints", "grid_images")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("num_workers", "warmup_steps", "grad_clip", "perceptual_weight", "lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.ema_decay <= 1.0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("ema_decay and min_lr_ratio must lie in [0, 1]")

    def launch_options(self) -> LaunchOptions:
        """The :class:`freqlat.core.LaunchOptions` of the run."""
        return self.launch

    def to_dict(self) -> dict[str, Any]:
        """The config as flat, JSON-ready values (the launch keys among the others)."""
        return config_to_dict(self)


def preset_defaults(preset: str) -> dict[str, Any]:
    """Defaults for ``preset``: the paper recipe, or a CPU recipe for ``-tiny`` presets.

    Every run defaults to ``run_dir`` ``runs/<preset>`` and the job name
    ``freqlat-train-<preset>``. The tiny recipe (32 px, 64 px for the VQ model whose input size
    is fixed by its patch sizes) trains without LPIPS and VF loss, since their pretrained
    networks cannot be downloaded here; ``config.json`` records that. The FA-VAE high branch
    sees half-size bands, so its PatchGAN is one layer shallower in the tiny recipe (a 3-layer
    one needs 24 px).
    """
    defaults: dict[str, Any] = {
        "run_dir": str(Path("runs") / preset),
        "job_name": f"freqlat-train-{preset}",
    }
    if not preset.endswith("-tiny"):
        return defaults
    return {
        **defaults,
        "image_size": 64 if preset.startswith("ms-vq-vae") else 32,
        "steps": 200,
        "batch_size": 8,
        "lr": 2e-4,
        "num_workers": 0,
        "ema_decay": 0.99,
        "perceptual_weight": 0.0,
        "use_vf": False,
        "disc_start": 100,
        "disc_base_channels": 16,
        "high_disc_layers": 2,
        "log_every": 10,
        "grid_every": 100,
        "checkpoint_every": 100,
        "grid_images": 8,
    }


def resolve_config(preset: str, overrides: dict[str, Any]) -> TokenizerTrainConfig:
    """Preset defaults, then ``overrides`` (typed values or command-line strings), validated.

    ``run_dir`` defaults to ``runs/<preset>``, so the same command resumes the same run.
    """
    from freqlat.tokenizers import list_tokenizers

    if preset not in list_tokenizers():
        raise ValueError(f"unknown preset {preset!r}; choose one of {list_tokenizers()}")
    if "preset" in overrides:
        raise ValueError("give the preset with --preset, not as an override")
    values: dict[str, Any] = {"preset": preset, **preset_defaults(preset)}
    values.update(typed_values(TokenizerTrainConfig, overrides))
    config = build_config(TokenizerTrainConfig, values)
    if config.data != EMBEDDED and not Path(config.data).is_dir():
        raise FileNotFoundError(
            f"data root {config.data} does not exist or is not a directory "
            f"(use --data {EMBEDDED} for the built-in photographs)"
        )
    return config


def write_config(config: TokenizerTrainConfig) -> Path:
    """Write ``config.json`` into the run directory, or check that the one there matches.

    A run directory belongs to one config: restarting with different settings would silently
    mix two runs, so a mismatch is a ValueError naming the keys that differ (the launch keys
    may change between starts).
    """
    launch_keys = set(config_keys(LaunchOptions))
    return write_config_json(Path(config.run_dir) / CONFIG_FILE, config, may_differ=launch_keys)


def read_config(run_dir: str | Path) -> TokenizerTrainConfig:
    """Read ``<run_dir>/config.json``."""
    return read_config_json(Path(run_dir) / CONFIG_FILE, TokenizerTrainConfig)
