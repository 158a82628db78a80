"""What a generator run is built from: the cache, the model that fits it, its latent space, grids.

The cache decides the model's input: a LightningDiT's ``in_channels`` and ``input_size``, an LDM
UNet's ``latent_channels``, a VAR's codebook size, code width and scales. A model override that
contradicts the cache is refused. The run's :class:`~freqlat.generators.LatentSpace` is the
cache's (or rebuilt from the cache's statistics with another normalisation) and is written into
the run directory; a resumed run refuses a cache whose tokenizer or statistics differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from freqlat.generators import (
    Generator,
    LatentCache,
    LatentSpace,
    create_generator,
    ddim_timesteps,
    preset_config,
    sample_ddim,
    sample_flow,
    seeded_noise,
)
from freqlat.generators.latent_cache import write_json
from freqlat.generators.latent_space import LATENT_SPACE_NAME
from freqlat.tokenizers import Tokenizer, load_tokenizer
from freqlat.train.generator_config import GeneratorTrainConfig

CACHE_RECORD = "latent_cache.json"
"""The run's record of the cache it trains on (path, tokenizer weights, count)."""
# hustvl/LightningDiT's sampling recipe (configs/reproductions/*_64ep_cfg.yaml), for the grids
GRID_TIMESTEP_SHIFT, GRID_CFG_INTERVAL_START = 0.3, 0.1
# FoundationVision/VAR's sampling defaults (models/var.py autoregressive_infer_cfg)
GRID_TOP_K, GRID_TOP_P = 900, 0.96


def model_fields(config: GeneratorTrainConfig, cache: LatentCache) -> dict[str, Any]:
    """The model config fields the cache decides, for ``config``'s family.

    ValueError when the cache cannot feed the family (no tokens for VAR, non-square latents) or
    when ``model_overrides`` sets one of these fields to another value.
    """
    manifest = cache.manifest
    channels, height, width = manifest.latent_shape
    where = f"the latent cache {cache.directory}"
    if config.family == "next-scale":
        if not manifest.has_tokens:
            raise ValueError(
                f"{config.preset} trains on token maps, but {where} was made by "
                f"{manifest.tokenizer!r}, which gives none (use an ms-vq-vae tokenizer)"
            )
        fields: dict[str, Any] = {
            "vocab_size": manifest.vocab_size,
            "latent_channels": channels,
            "patch_sizes": tuple(manifest.patch_sizes),
        }
    elif height != width:
        raise ValueError(f"{where} holds {height} x {width} latents; the model needs square ones")
    elif config.family == "flow":
        fields = {"in_channels": channels, "input_size": height}
    else:
        fields = {"latent_channels": channels}
    for key, value in fields.items():
        given = config.model_overrides.get(key)
        if given is not None and _normalised(given) != _normalised(value):
            raise ValueError(
                f"model_overrides sets {key}={given}, but {where} gives {key}={value} "
                f"(latents {channels} x {height} x {width} from {manifest.tokenizer!r})"
            )
    return fields


def _normalised(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def check_cache(config: GeneratorTrainConfig) -> LatentCache:
    """Open ``config.latents`` and check it can train ``config``'s model; returns the cache.

    Errors: not a finished cache, a family/cache mismatch (see :func:`model_fields`), labels
    beyond the model's classes, latents that the model's downsampling cannot divide, a run
    directory trained in another latent space (see :func:`claim_latents`).
    """
    cache = LatentCache(config.latents)
    fields = model_fields(config, cache)
    model_config = preset_config(config.preset, **{**config.model_overrides, **fields})
    classes = cache.manifest.num_classes
    if classes > model_config.num_classes:
        raise ValueError(
            f"the latent cache {cache.directory} has {classes} classes, more than the model's "
            f"num_classes {model_config.num_classes}"
        )
    side = cache.manifest.latent_shape[1]
    factor = getattr(model_config, "downsample", None) or getattr(model_config, "patch_size", 1)
    if config.family != "next-scale" and side % factor:
        raise ValueError(
            f"{config.preset} needs a latent side divisible by {factor}; the latent cache "
            f"{cache.directory} holds {side} x {side} latents"
        )
    if config.family == "ddpm":  # the grids' DDIM grid must fit the schedule
        ddim_timesteps(config.grid_steps, model_config.schedule.num_timesteps)
    claim_latents(Path(config.run_dir), run_latent_space(config, cache), cache, write=False)
    return cache


def build_generator(
    config: GeneratorTrainConfig, cache: LatentCache, tokenizer: Tokenizer | None = None
) -> Generator:
    """The preset with ``model_overrides`` and the cache's fields, freshly initialised (VAR:
    attached to ``tokenizer``)."""
    fields = model_fields(config, cache)
    return create_generator(
        config.preset, tokenizer=tokenizer, **{**config.model_overrides, **fields}
    )


def run_latent_space(config: GeneratorTrainConfig, cache: LatentCache) -> LatentSpace:
    """The run's latent space: the cache's, or one rebuilt from the cache's statistics with
    ``latent_normalization`` (VAR: ``none``, it trains on token indices)."""
    wanted = config.latent_normalization
    if config.family == "next-scale":
        wanted = "none"
    space = cache.latent_space
    if wanted is None or wanted == space.normalization:
        return space
    return LatentSpace.from_statistics(
        space.tokenizer,
        space.latent_shape,
        cache.statistics(),
        normalization=wanted,
        multiplier=space.multiplier,
        source=space.source,
    )


def cache_record(cache: LatentCache) -> dict[str, Any]:
    """What a run remembers of its cache, to refuse another one when it resumes."""
    manifest = cache.manifest
    return {
        "latents": str(cache.directory),
        "tokenizer": manifest.tokenizer,
        "tokenizer_sha256": manifest.tokenizer_sha256,
        "count": manifest.count,
        "latent_shape": list(manifest.latent_shape),
    }


def claim_latents(
    run_dir: Path, space: LatentSpace, cache: LatentCache, *, write: bool = True
) -> None:
    """Check the run's ``latent_space.json`` and cache record against ``space`` and ``cache``,
    then (with ``write``) write them.

    A run resumed on a cache made by another tokenizer, or with other statistics, is refused
    (ValueError naming both), since its weights belong to the first latent space.
    """
    record = cache_record(cache)
    saved_record = run_dir / CACHE_RECORD
    if (run_dir / LATENT_SPACE_NAME).is_file():
        saved = LatentSpace.load(run_dir)
        if saved != space:
            raise ValueError(
                f"{run_dir} was trained in the latent space of {saved.tokenizer!r} "
                f"({saved.normalization}, mean[0] {saved.mean[0]:.6g}, std[0] {saved.std[0]:.6g}); "
                f"{cache.directory} gives {space.tokenizer!r} ({space.normalization}, "
                f"mean[0] {space.mean[0]:.6g}, std[0] {space.std[0]:.6g}): use a new --run-dir"
            )
        if saved_record.is_file():
            previous = json.loads(saved_record.read_text("utf-8"))
            for key in ("tokenizer_sha256", "count", "latent_shape"):
                if previous.get(key) != record[key]:
                    raise ValueError(
                        f"{run_dir} was trained on {previous.get('latents')} ({key} "
                        f"{previous.get(key)}); {cache.directory} has {key} {record[key]}: "
                        "use a new --run-dir"
                    )
    if write:
        space.save(run_dir)
        write_json(saved_record, record)


def load_cache_tokenizer(space: LatentSpace, device: torch.device) -> Tokenizer:
    """The tokenizer the latent space names, in eval mode on ``device``."""
    return load_tokenizer(space.tokenizer).model.to(device).eval()


def grid_labels(count: int, num_classes: int, device: torch.device) -> Tensor:
    """``count`` labels spread evenly over the classes (the same in every grid)."""
    return torch.tensor([i * num_classes // count for i in range(count)], device=device)


@torch.no_grad()
def sample_grid_images(
    model: nn.Module,
    config: GeneratorTrainConfig,
    space: LatentSpace,
    tokenizer: Tokenizer,
    num_classes: int,
) -> Tensor:
    """Images in [-1, 1] sampled by ``model`` (eval mode) from fixed noise and labels, decoded
    by the cache's tokenizer: N x 3 x H x W on the CPU.

    Flow: Euler with upstream's timestep shift (and guidance from t = 0.1 when
    ``grid_cfg_scale`` is set); DDPM: DDIM, eta 0; VAR: top-k 900 / top-p 0.96 draws from one
    generator per sample. Every random draw has its own seeded generator, so grids leave the
    training RNG alone.
    """
    device = next(model.parameters()).device
    count = config.grid_samples
    labels = grid_labels(count, num_classes, device)
    was_training = model.training
    model.eval()
    try:
        if config.family == "next-scale":
            generators = [torch.Generator(device).manual_seed(i) for i in range(count)]
            cfg = config.grid_cfg_scale or 0.0
            tokens = model.generate(
                labels, cfg=cfg, top_k=GRID_TOP_K, top_p=GRID_TOP_P, generator=generators
            )
            images = tokenizer.decode_indices(tokens)
        else:
            noise = seeded_noise(range(count), space.latent_shape, device)
            cfg = config.grid_cfg_scale or 1.0
            if config.family == "flow":
                x = sample_flow(
                    model, noise, labels, steps=config.grid_steps, cfg_scale=cfg,
                    cfg_interval_start=GRID_CFG_INTERVAL_START,
                    timestep_shift=GRID_TIMESTEP_SHIFT,
                )  # fmt: skip
            else:
                x = sample_ddim(model, noise, labels, steps=config.grid_steps, cfg_scale=cfg)
            images = tokenizer.decode(space.denormalize(x.float()))
    finally:
        model.train(was_training)
    return images.float().clamp(-1, 1).cpu()


def export_run(run_dir: Path, model: Generator, ema_model: Generator, space: LatentSpace) -> None:
    """``export/model`` and ``export/ema``: each a ``save_pretrained`` directory with the run's
    ``latent_space.json`` beside the weights (what ``freqlat-eval generate`` reads)."""
    for name, module in (("model", model), ("ema", ema_model)):
        directory = run_dir / "export" / name
        module.save_pretrained(directory)
        space.save(directory)
