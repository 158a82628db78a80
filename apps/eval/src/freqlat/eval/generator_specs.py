"""Turn a ``--generator`` spec into a generator ready to sample, with its tokenizer and latent space.

Accepted forms of a spec:

- a ``freqlat-train generator`` run directory: its ``export/ema`` weights (``RUN:raw`` for
  ``export/model``), each a ``save_pretrained`` directory with the run's ``latent_space.json``;
- a ``save_pretrained`` directory (its ``latent_space.json``, or ``--tokenizer`` and
  ``--latent-stats`` when it has none);
- ``PRESET=CHECKPOINT`` (or ``PRESET`` for the cache) for a released checkpoint
  (:func:`freqlat.generators.from_official`); its latent space is ``--tokenizer`` with
  ``--latent-stats`` (upstream's ``latents_stats.pt``, or a ``latent_space.json``); VAR's tokens
  need no statistics.

A run's latent space names the tokenizer it was trained on. A ``--tokenizer`` that differs from
it is an error unless ``--force-tokenizer`` is set; either way the tokenizer used is recorded.

:func:`resolve_generator` does all of this without reading any weights (so that a command can be
checked before it is submitted); :func:`load_generator` then loads the weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from freqlat.eval.sampling import FAMILIES
from freqlat.generators import (
    Generator,
    LatentSpace,
    LDMConfig,
    LightningDiTConfig,
    VARConfig,
    from_official,
    list_generators,
    load_official_latent_stats,
    preset_config,
)
from freqlat.generators.latent_space import LATENT_SPACE_NAME
from freqlat.generators.lightningdit_official import RELEASES
from freqlat.tokenizers import LoadedTokenizer, load_tokenizer
from freqlat.tokenizers.configs import config_from_dict
from freqlat.tokenizers.pretrained import read_pretrained_meta

logger = logging.getLogger("freqlat.eval")

RAW = ":raw"
CONFIGS = {"lightningdit": LightningDiTConfig, "ldm-unet": LDMConfig, "var": VARConfig}
"""Generator architecture -> its config class (read from a save_pretrained config.json)."""


@dataclass
class GeneratorOptions:
    """The options that say how ``--generator`` specs are completed (see the module docstring)."""

    tokenizer: str | None = None
    force_tokenizer: bool = False
    latent_stats: str | None = None
    seed: int = 0


@dataclass
class GeneratorSpec:
    """A resolved ``--generator`` spec: what to load and how its samples are decoded.

    ``directory`` is the save_pretrained directory, or None for a release (``preset`` and
    ``checkpoint``, None for the cache); ``config`` the model's config; ``latent_space`` names
    the tokenizer spec that decodes the latents (``tokenizer_spec``, which may be a forced one);
    ``epochs`` how long it was trained, when known; ``notes`` what the table should say.
    """

    spec: str
    name: str
    family: str
    config: Any
    tokenizer_spec: str
    latent_space: LatentSpace
    directory: Path | None = None
    preset: str | None = None
    checkpoint: str | None = None
    epochs: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """Where the weights come from."""
        if self.directory is not None:
            return str(self.directory)
        return f"official weights {self.checkpoint or self.preset + ' (cache)'}"


@dataclass
class LoadedGenerator:
    """A generator with everything its samples depend on (see :class:`GeneratorSpec`)."""

    name: str
    family: str
    model: Generator
    tokenizer: LoadedTokenizer
    tokenizer_spec: str
    latent_space: LatentSpace
    source: str
    epochs: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """Number of classes (labels 0 ... num_classes - 1; the null class is num_classes)."""
        return int(self.model.config.num_classes)

    def fingerprint(self) -> str:
        """sha256 over the generator's and the tokenizer's weights and the latent space."""
        digest = hashlib.sha256()
        for module in (self.model, self.tokenizer.model):
            for name, tensor in sorted(module.state_dict().items()):
                digest.update(name.encode())
                flat = tensor.detach().cpu().contiguous().reshape(-1)
                digest.update(flat.view(torch.uint8).numpy().tobytes())
        digest.update(json.dumps(self.latent_space.to_dict(), sort_keys=True).encode())
        return digest.hexdigest()

    def to(self, device: torch.device | str) -> LoadedGenerator:
        """Move the generator and its tokenizer to ``device`` (eval mode); returns self."""
        self.model.to(device).eval()
        self.tokenizer.model.to(device).eval()
        return self


def canonical_tokenizer_spec(spec: str) -> str:
    """A tokenizer spec in a form that compares equal for the same weights: directories
    absolute (a run directory as its ``export/ema`` or ``export/model``), ``PRESET=PATH`` with
    the path absolute."""
    raw = spec.endswith(RAW)
    path = Path(spec.removesuffix(RAW))
    if path.is_dir():
        path = path.resolve()
        export = path / "export" / ("model" if raw else "ema")
        return str(export if export.is_dir() else path)
    preset, eq, file = spec.partition("=")
    return f"{preset}={Path(file).resolve()}" if eq else spec


def _choose_tokenizer(
    spec: str, recorded: str | None, options: GeneratorOptions, notes: list[str]
) -> str:
    """The tokenizer spec to decode with: ``--tokenizer`` or the one the latent space records."""
    given = options.tokenizer
    if given is None:
        if not recorded:
            raise ValueError(
                f"--generator {spec}: give --tokenizer (the tokenizer whose latents it models)"
            )
        return recorded
    if recorded and canonical_tokenizer_spec(given) != canonical_tokenizer_spec(recorded):
        if not options.force_tokenizer:
            raise ValueError(
                f"--generator {spec} was trained on the latents of tokenizer {recorded!r}, not "
                f"--tokenizer {given!r}; drop --tokenizer, or add --force-tokenizer to decode "
                "with it anyway"
            )
        notes.append(f"decoded with --tokenizer {given} (forced) instead of {recorded}")
    return given


def _latent_shape(family: str, config: Any, channels: int | None) -> tuple[int, int, int] | None:
    """The latent shape a model fixes: LightningDiT's grid, VAR's last scale; LDM fixes none."""
    if family == "flow":
        return (channels or config.in_channels, config.input_size, config.input_size)
    if family == "var":
        side = config.patch_sizes[-1]
        return (config.latent_channels, side, side)
    return None


def read_latent_stats(path: str, tokenizer_spec: str, family: str, config: Any) -> LatentSpace:
    """The latent space of ``--latent-stats``: a ``latent_space.json`` (file or folder), or a
    ``{'mean', 'std'}`` file such as upstream LightningDiT's ``latents_stats.pt`` (channel-wise,
    multiplier 1, as its ``configs/reproductions/*.yaml``) on the latent grid the model fixes."""
    file = Path(path)
    if file.is_dir() or file.name == LATENT_SPACE_NAME:
        return LatentSpace.load(file if file.is_dir() else file.parent)
    if not file.is_file():
        raise FileNotFoundError(f"--latent-stats {path} does not exist")
    if file.suffix == ".json":
        return LatentSpace.from_dict(json.loads(file.read_text(encoding="utf-8")), str(file))
    mean, std = load_official_latent_stats(file)
    shape = _latent_shape(family, config, mean.shape[1])
    if shape is None:
        raise ValueError(
            f"--latent-stats {path}: this generator does not fix its latent size; give a "
            "latent_space.json (freqlat.generators.LatentSpace(...).save(DIR))"
        )
    return LatentSpace(
        tokenizer=tokenizer_spec,
        latent_shape=shape,
        mean=tuple(float(v) for v in mean.flatten()),
        std=tuple(float(v) for v in std.flatten()),
        normalization="channel",
        source=f"{file} (mean and std per channel)",
    )


def _token_space(tokenizer_spec: str, config: Any) -> LatentSpace:
    channels, height, width = _latent_shape("var", config, None)
    return LatentSpace(
        tokenizer=tokenizer_spec,
        latent_shape=(channels, height, width),
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        normalization="none",
        source="token model: no normalisation",
    )


def _complete(
    spec: str, family: str, config: Any, space: LatentSpace | None, options: GeneratorOptions
) -> tuple[str, LatentSpace, list[str]]:
    """(tokenizer spec, latent space, notes) of a generator whose own space is ``space``."""
    notes: list[str] = []
    if space is not None and options.latent_stats is not None:
        raise ValueError(
            f"--generator {spec} carries its latent statistics ({LATENT_SPACE_NAME}); "
            "--latent-stats is for released checkpoints and directories without one"
        )
    if space is None and family != "var":
        if options.latent_stats is None:
            raise ValueError(
                f"--generator {spec} has no {LATENT_SPACE_NAME}: give --latent-stats (upstream's "
                "latents_stats.pt, or a latent_space.json) to undo its latent normalisation"
            )
        space = read_latent_stats(options.latent_stats, options.tokenizer or "", family, config)
    tokenizer_spec = _choose_tokenizer(spec, space.tokenizer if space else None, options, notes)
    if space is None:
        space = _token_space(tokenizer_spec, config)
    return tokenizer_spec, space, notes


def _run_epochs(run: Path | None) -> float | None:
    """The ``epochs`` a run's config.json records, if it records them."""
    if run is None or not (run / "config.json").is_file():
        return None
    value = json.loads((run / "config.json").read_text(encoding="utf-8")).get("epochs")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _release_epochs(file: str | None) -> float | None:
    """Epochs of a released LightningDiT checkpoint, from its file name (64ep, 800ep)."""
    for epochs, release in RELEASES.items():
        if file and Path(file).name == release.filename:
            return float(epochs.removesuffix("ep"))
    return None


def _is_saved(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()


def _resolve_directory(spec: str, root: Path, options: GeneratorOptions) -> GeneratorSpec:
    raw = spec.endswith(RAW)
    export = root / "export" / ("model" if raw else "ema")
    if _is_saved(export):
        directory, suffix, run = export, " (raw)" if raw else " (EMA)", root
    elif _is_saved(root) and not raw:
        directory, suffix, run = root, "", None
    else:
        raise FileNotFoundError(
            f"--generator {spec}: {root} is neither a save_pretrained directory (config.json + "
            f"model.safetensors) nor a freqlat-train run directory with {export}"
        )
    meta = read_pretrained_meta(directory)
    architecture = meta.get("architecture")
    if architecture not in FAMILIES:
        raise ValueError(
            f"{directory / 'config.json'} names architecture {architecture!r}; freqlat-eval "
            f"generate samples {sorted(FAMILIES)}"
        )
    family = FAMILIES[architecture]
    config = config_from_dict(CONFIGS[architecture], meta["config"])
    own = LatentSpace.load(directory) if (directory / LATENT_SPACE_NAME).is_file() else None
    tokenizer_spec, space, notes = _complete(spec, family, config, own, options)
    return GeneratorSpec(
        spec=spec,
        name=f"{meta.get('preset') or (run or directory).name}{suffix}",
        family=family,
        config=config,
        tokenizer_spec=tokenizer_spec,
        latent_space=space,
        directory=directory,
        epochs=_run_epochs(run),
        notes=notes,
    )


def _resolve_release(spec: str, preset: str, file: str, options: GeneratorOptions):
    config = preset_config(preset)
    family = {LightningDiTConfig: "flow", LDMConfig: "ldm", VARConfig: "var"}[type(config)]
    if file and not Path(file).exists():
        raise FileNotFoundError(f"--generator {spec}: checkpoint {file} does not exist")
    tokenizer_spec, space, notes = _complete(spec, family, config, None, options)
    return GeneratorSpec(
        spec=spec,
        name=f"{preset} (official)",
        family=family,
        config=config,
        tokenizer_spec=tokenizer_spec,
        latent_space=space,
        preset=preset,
        checkpoint=file or None,
        epochs=_release_epochs(file),
        notes=notes,
    )


def resolve_generator(spec: str, options: GeneratorOptions) -> GeneratorSpec:
    """Resolve ``spec`` (module docstring) without reading any weights.

    Anything that does not resolve or does not fit (tokenizer, statistics) is a ValueError or
    FileNotFoundError naming the spec and what is wrong.
    """
    root = Path(spec.removesuffix(RAW))
    if root.is_dir():
        return _resolve_directory(spec, root, options)
    preset, _, file = spec.partition("=")
    if preset not in list_generators():
        raise FileNotFoundError(
            f"--generator {spec!r} is not a directory, a run directory or PRESET=CHECKPOINT "
            f"of a released generator (presets: {list_generators()})"
        )
    return _resolve_release(spec, preset, file, options)


def _check_latents(loaded: LoadedGenerator) -> None:
    channels, height, width = loaded.latent_space.latent_shape
    config = loaded.model.config
    if loaded.family == "var":
        return
    if loaded.family == "flow" and (config.in_channels, config.input_size) != (channels, height):
        raise ValueError(
            f"{loaded.name} models {config.in_channels} x {config.input_size} x "
            f"{config.input_size} latents, its latent space {channels} x {height} x {width}"
        )
    if loaded.family == "ldm" and config.latent_channels != channels:
        raise ValueError(
            f"{loaded.name} models {config.latent_channels}-channel latents, its latent space "
            f"{channels}"
        )
    if loaded.tokenizer.model.latent_channels != channels:
        raise ValueError(
            f"tokenizer {loaded.tokenizer.name} has {loaded.tokenizer.model.latent_channels} "
            f"latent channels, the latents of {loaded.name} {channels}"
        )


def load_generator(resolved: GeneratorSpec, seed: int = 0) -> LoadedGenerator:
    """Load the weights of a resolved spec and its tokenizer (``random:`` tokenizers under
    ``seed``), on the CPU in eval mode; latents that do not fit are a ValueError."""
    tokenizer = load_tokenizer(resolved.tokenizer_spec, seed=seed)
    components = {"tokenizer": tokenizer.model} if resolved.family == "var" else {}
    if resolved.directory is not None:
        model = Generator.from_pretrained(resolved.directory, **components)
    else:
        model = from_official(resolved.preset, resolved.checkpoint, **components)
    loaded = LoadedGenerator(
        name=resolved.name,
        family=resolved.family,
        model=model.eval(),
        tokenizer=tokenizer,
        tokenizer_spec=resolved.tokenizer_spec,
        latent_space=resolved.latent_space,
        source=resolved.source,
        epochs=resolved.epochs,
        notes=list(resolved.notes),
    )
    _check_latents(loaded)
    logger.info("loaded %s (%s), tokenizer %s", loaded.name, loaded.source, tokenizer.name)
    return loaded
