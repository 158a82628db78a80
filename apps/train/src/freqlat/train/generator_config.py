"""The one typed config of a generator training run: the preset's recipe, overrides, config.json.

:func:`resolve_generator_config` starts from :func:`generator_defaults` (upstream's published
recipe for a paper preset, a CPU recipe for a ``-tiny`` one), applies ``key=value`` overrides
with their types checked (:mod:`freqlat.core.config`), validates the result and checks that the
latent cache it names is finished and fits the model. The family of a preset (its objective,
sampler and recipe) follows from its name: ``lightningdit-*`` rectified flow, ``ldm-*`` DDPM,
``var-*`` next-scale prediction.

Torch-free until a config is validated, so ``--help`` answers at once (for a ``var-*`` preset
the defaults come from ``freqlat.generators.var_training_recipe``, which imports torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqlat.core.config import (
    CONFIG_FILE,
    build_config,
    check_fields,
    config_field,
    config_to_dict,
    read_config_json,
    typed_values,
)
from freqlat.core.launch_options import LaunchOptions
from freqlat.core.recipe import LR_SCHEDULES, PRECISIONS

FAMILIES = {"lightningdit-": "flow", "ldm-": "ddpm", "var-": "next-scale"}
"""Preset name prefix -> generator family (objective, sampler, recipe)."""
TIME_SAMPLINGS = ("logit-normal", "uniform")
"""``freqlat.generators.flow.TIME_SAMPLINGS``, named here so that --help does not import torch."""
NORMALIZATIONS = ("channel", "global", "none")
IMAGENET_TRAIN_IMAGES = 1_281_167
"""Images in ImageNet-1k's training split: VAR's recipes count epochs of it."""


def family_of(preset: str) -> str:
    """``"flow"``, ``"ddpm"`` or ``"next-scale"`` for a generator preset name."""
    for prefix, family in FAMILIES.items():
        if preset.startswith(prefix):
            return family
    raise ValueError(f"no generator family for preset {preset!r} (prefixes: {sorted(FAMILIES)})")


@dataclass
class GeneratorTrainConfig:
    """Every knob of a generator training run, resolved before anything starts.

    Model: ``preset`` (a ``freqlat.generators`` preset) with ``model_overrides``; its latent
    channels and size (VAR: its tokenizer's codebook and scales) are taken from the cache.
    Data: ``latents``, a finished ``cache-latents`` directory; ``batch_size`` is the global
    batch, split evenly over the processes. Optimiser: AdamW with ``weight_decay`` (VAR: on its
    weight matrices only, annealed to ``final_weight_decay``), ``lr_schedule`` after
    ``warmup_steps``, optional clipping. Objective options apply to one family each.
    """

    preset: str = config_field(help="the freqlat.generators preset, e.g. lightningdit-xl-1")
    latents: str = config_field(
        help="latent cache directory written by freqlat-train cache-latents"
    )
    run_dir: str = config_field(
        help="run directory: config.json, checkpoints, grids, export (default: runs/<preset>)"
    )
    model_overrides: dict[str, Any] = config_field(
        default_factory=dict, help='create_generator overrides of the preset, e.g. {"depth": 2}'
    )
    latent_normalization: str | None = config_field(
        None,
        help="normalisation of the cached latents: channel, global, none (none given: the "
        "cache's latent_space.json; VAR: none)",
        choices=NORMALIZATIONS,
    )
    random_flip: bool = config_field(True, help="train on the cached mirror images half the time")
    num_workers: int = config_field(4, help="DataLoader worker processes per training process")
    seed: int = config_field(0, help="seed of the weights, the data order, flips and noise")
    steps: int = config_field(80_000, help="training steps (optimiser updates)")
    batch_size: int = config_field(1024, help="global batch: images per step over all processes")
    lr: float = config_field(2e-4, help="peak learning rate")
    beta1: float = config_field(0.9, help="AdamW beta1")
    beta2: float = config_field(0.95, help="AdamW beta2")
    weight_decay: float = config_field(0.0, help="AdamW weight decay (VAR: of its weight matrices)")
    final_weight_decay: float | None = config_field(
        None, help="weight decay at the last step, by half cosine (none: constant)"
    )
    lr_schedule: str = config_field(
        "constant",
        help="constant / cosine after a linear warm-up, or VAR's lin0",
        choices=LR_SCHEDULES,
    )
    warmup_steps: int = config_field(0, help="LR warm-up steps")
    min_lr_ratio: float = config_field(0.0, help="final LR / peak LR (cosine, lin0)")
    grad_clip: float = config_field(0.0, help="gradient-norm clipping (0: off)")
    precision: str = config_field("bf16", help="training precision", choices=PRECISIONS)
    ema_decay: float = config_field(
        0.9999, help="EMA decay (0: the EMA is the raw weights, for recipes without EMA)"
    )
    time_sampling: str = config_field(
        "logit-normal", help="flow: distribution of t", choices=TIME_SAMPLINGS
    )
    cosine_loss: bool = config_field(True, help="flow: add 1 - cosine(v, u) to the MSE")
    label_smoothing: float = config_field(0.0, help="next-scale (VAR): cross-entropy smoothing")
    log_every: int = config_field(100, help="steps between log lines and tensorboard scalars")
    grid_every: int = config_field(5000, help="steps between grids of EMA samples")
    grid_samples: int = config_field(8, help="samples in each grid (fixed noise and labels)")
    grid_steps: int = config_field(50, help="sampler steps of the grids (flow, DDIM)")
    grid_cfg_scale: float | None = config_field(
        None, help="guidance of the grids (none: unguided; VAR: its ramped cfg)"
    )
    checkpoint_every: int = config_field(5000, help="steps between checkpoints")
    keep_checkpoints: int = config_field(3, help="newest checkpoints kept")
    launch: LaunchOptions = config_field(
        default_factory=LaunchOptions, help="where and how the run is launched"
    )

    def __post_init__(self) -> None:
        from freqlat.generators import list_generators, preset_config

        if self.preset not in list_generators():
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {list_generators()}")
        family = family_of(self.preset)
        preset_config(self.preset, **self.model_overrides)  # unknown model keys raise here
        check_fields(
            self,
            positive=(
                "steps", "batch_size", "log_every", "grid_every", "grid_samples", "grid_steps",
                "checkpoint_every", "keep_checkpoints",
            ),
            non_negative=(
                "num_workers", "warmup_steps", "grad_clip", "lr", "weight_decay",
                "final_weight_decay",
            ),
            unit_interval=("ema_decay", "min_lr_ratio"),
        )  # fmt: skip
        if family != "flow" and (self.time_sampling != "logit-normal" or not self.cosine_loss):
            raise ValueError(
                f"time_sampling and cosine_loss apply to flow presets, not {self.preset}"
            )
        if family != "next-scale" and self.label_smoothing != 0:
            raise ValueError(f"label_smoothing applies to VAR presets, not {self.preset}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if family == "next-scale" and self.latent_normalization not in (None, "none"):
            raise ValueError("VAR trains on token indices: latent_normalization must be none")

    @property
    def family(self) -> str:
        """The preset's family: ``flow``, ``ddpm`` or ``next-scale``."""
        return family_of(self.preset)

    def launch_options(self) -> LaunchOptions:
        """The :class:`freqlat.core.LaunchOptions` of the run."""
        return self.launch

    def to_dict(self) -> dict[str, Any]:
        """The config as flat, JSON-ready values (the launch keys among the others)."""
        return config_to_dict(self)


# hustvl/LightningDiT configs/reproductions/lightningdit_xl_vavae_f16d32_64ep_cfg.yaml and
# train.py: AdamW(lr 2e-4, weight_decay 0, betas (0.9, 0.95)), global batch 1024, 80k steps
# (64 epochs), EMA 0.9999, bf16 (run_train.sh), logit-normal t, cosine loss, no clipping.
FLOW_RECIPE: dict[str, Any] = {
    "steps": 80_000,
    "batch_size": 1024,
    "lr": 2e-4,
    "beta1": 0.9,
    "beta2": 0.95,
    "weight_decay": 0.0,
    "ema_decay": 0.9999,
    "precision": "bf16",
}

# CompVis/latent-diffusion: cin256-v2.yaml (base_learning_rate 1e-4, use_ema False) and
# LatentDiffusion.configure_optimizers (torch's AdamW defaults: betas (0.9, 0.999), weight
# decay 0.01); Lightning's default fp32 and no clipping; batch 1200 for 178k steps (Rombach et
# al. 2022, the class-conditional ImageNet LDM-4's hyperparameters).
DDPM_RECIPE: dict[str, Any] = {
    "steps": 178_000,
    "batch_size": 1200,
    "lr": 1e-4,
    "beta1": 0.9,
    "beta2": 0.999,
    "weight_decay": 0.01,
    "ema_decay": 0.0,
    "precision": "fp32",
}

# Ours, for CPU runs: fp32, a small batch, a higher LR than the paper recipes (which need
# thousands of steps), frequent logs, grids and checkpoints.
TINY_RECIPE: dict[str, Any] = {
    "steps": 200,
    "batch_size": 16,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "precision": "fp32",
    "ema_decay": 0.99,
    "num_workers": 0,
    "log_every": 10,
    "grid_every": 100,
    "grid_samples": 8,
    "grid_steps": 25,
    "checkpoint_every": 100,
}


def var_recipe_defaults(preset: str) -> dict[str, Any]:
    """VAR's published recipe as config values (FoundationVision/VAR ``train.py``, README).

    Epochs become steps of ImageNet-1k's training split (``DistInfiniteBatchSampler``: ceil of
    images / global batch per epoch); warm-up is epochs / 50. Upstream keeps no EMA, trains in
    fp16 and without horizontal flips.
    """
    from freqlat.generators import var_training_recipe

    recipe = var_training_recipe(preset)
    per_epoch = -(-IMAGENET_TRAIN_IMAGES // recipe.batch_size)
    return {
        "steps": round(recipe.epochs * per_epoch),
        "warmup_steps": round(recipe.warmup_epochs * per_epoch),
        "batch_size": recipe.batch_size,
        "lr": recipe.peak_lr(),
        "beta1": recipe.betas[0],
        "beta2": recipe.betas[1],
        "weight_decay": recipe.weight_decay,
        "final_weight_decay": recipe.final_weight_decay,
        "grad_clip": recipe.grad_clip,
        "label_smoothing": recipe.label_smoothing,
        "lr_schedule": recipe.schedule,
        "min_lr_ratio": recipe.final_lr_ratio,
        "precision": recipe.precision,
        "ema_decay": 0.0,
        "random_flip": False,
    }


def generator_defaults(preset: str) -> dict[str, Any]:
    """Defaults for ``preset``: upstream's recipe, or the CPU recipe for ``-tiny`` presets.

    Every run defaults to ``run_dir`` ``runs/<preset>`` and the job name
    ``freqlat-train-<preset>``.
    """
    defaults: dict[str, Any] = {
        "run_dir": str(Path("runs") / preset),
        "job_name": f"freqlat-train-{preset}",
    }
    family = next((f for p, f in FAMILIES.items() if preset.startswith(p)), None)
    if family == "flow":
        defaults.update(FLOW_RECIPE)
    elif family == "ddpm":
        defaults.update(DDPM_RECIPE)
    elif family == "next-scale":
        defaults.update(var_recipe_defaults(preset))
    if preset.endswith("-tiny"):
        defaults.update(TINY_RECIPE)
    return defaults


def resolve_generator_config(preset: str, overrides: dict[str, Any]) -> GeneratorTrainConfig:
    """Preset defaults, then ``overrides`` (typed values or command-line strings), validated,
    and checked against the latent cache (see :func:`freqlat.train.generator_model.check_cache`)."""
    from freqlat.generators import list_generators

    if preset not in list_generators():
        raise ValueError(f"unknown preset {preset!r}; choose one of {list_generators()}")
    if "preset" in overrides:
        raise ValueError("give the preset with --preset, not as an override")
    values: dict[str, Any] = {"preset": preset, **generator_defaults(preset)}
    values.update(typed_values(GeneratorTrainConfig, overrides))
    if isinstance(values.get("latents"), str):
        values["latents"] = str(Path(values["latents"]).resolve())
    config = build_config(GeneratorTrainConfig, values)
    from freqlat.train.generator_model import check_cache

    check_cache(config)
    return config


def read_generator_config(run_dir: str | Path) -> GeneratorTrainConfig:
    """Read ``<run_dir>/config.json``."""
    return read_config_json(Path(run_dir) / CONFIG_FILE, GeneratorTrainConfig)
