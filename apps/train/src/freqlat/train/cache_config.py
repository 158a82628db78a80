"""The typed config of ``freqlat-train cache-latents``: which tokenizer encodes which images, how.

Like the training configs it is resolved before anything runs and written to
``<out>/config.json`` (:func:`freqlat.core.write_run_config`); a restart into the same folder
must resolve to the same config (the launch keys may change).
Torch-free until it is validated, so ``--help`` answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqlat.core.config import (
    build_config,
    check_fields,
    config_field,
    config_to_dict,
    typed_values,
)
from freqlat.core.launch_options import LaunchOptions
from freqlat.core.recipe import PRECISIONS

EMBEDDED = "embedded"
CROP_NAMES = ("adm", "resize-center")
"""The keys of ``freqlat.core.data.CROPS`` (named here so that --help does not import torch)."""
NORMALIZATION_NAMES = ("channel", "global", "none")
"""``freqlat.generators.latent_space.NORMALIZATIONS``, named here for the same reason."""


@dataclass
class CacheLatentsConfig:
    """Every knob of a latent cache: tokenizer, images, encoding, shards, statistics, launch.

    Each training image is cut to ``image_size`` by ``crop`` and encoded as it is and mirrored;
    ``sample`` picks posterior samples (one seeded generator per image and flip, from
    ``seed``) or the posterior mode (VQ tokenizers: the quantised latent either way, plus the
    token maps). ``batch_size`` is per process; process r encodes shards r, r + world, ...
    """

    tokenizer: str = config_field(
        help="tokenizer spec: a freqlat-train run or save_pretrained directory, an official "
        "preset (PRESET or PRESET=PATH), or random:PRESET"
    )
    out: str = config_field(help="cache directory (shards, statistics, manifest)")
    data: str = config_field(
        EMBEDDED, help="'embedded' (scikit-image's photographs), an ImageNet root or a folder"
    )
    image_size: int = config_field(256, help="crop side in pixels")
    crop: str = config_field(
        "adm",
        help="how images are cut to squares (ADM's center crop, as upstream)",
        choices=CROP_NAMES,
    )
    sample: bool = config_field(
        True,
        help="posterior sample (as hustvl/LightningDiT extract_features.py) or mode (false); "
        "no effect for VQ tokenizers",
    )
    seed: int = config_field(0, help="seed of the posterior samples and of the statistics sample")
    batch_size: int = config_field(64, help="images per process and encoder call")
    num_workers: int = config_field(4, help="DataLoader worker processes per process")
    shard_size: int = config_field(10_000, help="images per shard file")
    max_images: int | None = config_field(
        None, help="cache only the first N training images (none: all)"
    )
    stats_samples: int = config_field(
        10_000, help="un-flipped latents drawn (seeded) for the mean/std statistics, as upstream"
    )
    normalization: str = config_field(
        "channel",
        help="the cache's latent_space.json: channel mean/std (LightningDiT), per-group global "
        "scale (MAR, FA-VAE branches) or none",
        choices=NORMALIZATION_NAMES,
    )
    source_labels: bool = config_field(
        False, help="embedded data only: label each crop by its source photograph"
    )
    precision: str = config_field("fp32", help="encoding precision", choices=PRECISIONS)
    skip_bad_images: bool = config_field(
        False, help="replace undecodable images by the next one (their labels too)"
    )
    launch: LaunchOptions = config_field(
        default_factory=lambda: LaunchOptions(job_name="freqlat-cache-latents"),
        help="where and how the job is launched",
    )

    def __post_init__(self) -> None:
        check_fields(
            self,
            positive=("image_size", "batch_size", "shard_size", "stats_samples", "max_images"),
            non_negative=("num_workers",),
        )
        if self.source_labels and self.data != EMBEDDED:
            raise ValueError("source_labels applies to --data embedded only")

    def launch_options(self) -> LaunchOptions:
        """The :class:`freqlat.core.LaunchOptions` of the job."""
        return self.launch

    def to_dict(self) -> dict[str, Any]:
        """The config as flat, JSON-ready values."""
        return config_to_dict(self)


def resolve_cache_config(overrides: dict[str, Any]) -> CacheLatentsConfig:
    """Defaults, then ``overrides`` (typed values or command-line strings), validated.

    A directory tokenizer spec is made absolute, so the cache names its tokenizer wherever it
    is read from.
    """
    values = typed_values(CacheLatentsConfig, overrides)
    spec = values.get("tokenizer")
    if isinstance(spec, str):
        raw = spec.endswith(":raw")
        path = Path(spec.removesuffix(":raw"))
        if path.is_dir():
            values["tokenizer"] = str(path.resolve()) + (":raw" if raw else "")
    config = build_config(CacheLatentsConfig, values)
    if config.data != EMBEDDED and not Path(config.data).is_dir():
        raise FileNotFoundError(
            f"data root {config.data} does not exist or is not a directory "
            f"(use --data {EMBEDDED} for the built-in photographs)"
        )
    return config
