"""freqlat.train: the freqlat-train app (tokenizer runs, latent caches, generator runs; in-process
or through submitit).

Names are imported on first use, so that ``freqlat-train ... --help`` answers before torch is
loaded.
"""

from __future__ import annotations

from freqlat.core.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "main": "cli",
    "build_loss": "components",
    "build_model": "components",
    "build_training_loss": "components",
    "TokenizerTrainConfig": "config",
    "preset_defaults": "config",
    "read_config": "config",
    "resolve_config": "config",
    "write_config": "config",
    "TokenizerTrainingJob": "job",
    "train_tokenizer": "loop",
    "CacheLatentsConfig": "cache_config",
    "resolve_cache_config": "cache_config",
    "cache_latents": "cache_latents",
    "GeneratorTrainConfig": "generator_config",
    "generator_defaults": "generator_config",
    "read_generator_config": "generator_config",
    "resolve_generator_config": "generator_config",
    "train_generator": "generator_loop",
    "CacheLatentsJob": "job",
    "GeneratorTrainingJob": "job",
    "RunJob": "job",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
