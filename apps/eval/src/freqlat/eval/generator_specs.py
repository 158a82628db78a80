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
from freqlat.tokenizers.pretrained import read_pretrained_meta

logger = logging.getLogger("freqlat.eval")

RAW = ":raw"
_CONFIG_FAMILIES = {LightningDiTConfig: "flow", LDMConfig: "ldm", VARConfig: "var"}


@dataclass
class LoadedGenerator:
    """A generator with everything its samples depend on.

    ``family`` is its sampler family (``flow``, ``ldm``, ``var``); ``tokenizer_spec`` the
    tokenizer spec that decodes its latents; ``epochs`` how long it was trained, when known;
    ``notes`` what the table should say about how it was put together.
    """

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


def _is_saved(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()


def _weights_dir(spec: str) -> tuple[Path, str, Path | None] | None:
    """(weights directory, label suffix, run directory) of a directory spec; None otherwise."""
    raw = spec.endswith(RAW)
    root = Path(spec.removesuffix(RAW))
    if not root.is_dir():
        return None
    export = root / "export" / ("model" if raw else "ema")
    if _is_saved(export):
        return export, " (raw)" if raw else " (EMA)", root
    if _is_saved(root) and not raw:
        return root, "", None
    raise FileNotFoundError(
        f"--generator {spec}: {root} is neither a save_pretrained directory (config.json + "
        f"model.safetensors) nor a freqlat-train run directory with {export}"
    )


def _run_epochs(run: Path | None) -> float | None:
    """The ``epochs`` a run's config.json records, if it records them."""
    if run is None or not (run / "config.json").is_file():
        return None
    value = json.loads((run / "config.json").read_text(encoding="utf-8")).get("epochs")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _release_epochs(file: str) -> float | None:
    """Epochs of a released LightningDiT checkpoint, from its file name (64ep, 800ep)."""
    for epochs, release in RELEASES.items():
        if Path(file).name == release.filename:
            return float(epochs.removesuffix("ep"))
    return None


def read_latent_stats(
    path: str, tokenizer_spec: str, latent_shape: tuple[int, int, int] | None
) -> LatentSpace:
    """The latent space of an official generator: a ``latent_space.json`` (file or folder), or
    a ``{'mean', 'std'}`` file such as upstream LightningDiT's ``latents_stats.pt``
    (channel-wise, multiplier 1, as its ``configs/reproductions/*.yaml``), which needs
    ``latent_shape``."""
    file = Path(path)
    if file.is_dir() or file.name == LATENT_SPACE_NAME:
        return LatentSpace.load(file if file.is_dir() else file.parent)
    if not file.is_file():
        raise FileNotFoundError(f"--latent-stats {path} does not exist")
    if file.suffix == ".json":
        return LatentSpace.from_dict(json.loads(file.read_text(encoding="utf-8")), str(file))
    if latent_shape is None:
        raise ValueError(
            f"--latent-stats {path}: this generator needs a latent_space.json (it does not fix "
            "the latent size); write one with freqlat.generators.LatentSpace(...).save(DIR)"
        )
    mean, std = load_official_latent_stats(file)
    return LatentSpace(
        tokenizer=tokenizer_spec,
        latent_shape=latent_shape,
        mean=tuple(float(v) for v in mean.flatten()),
        std=tuple(float(v) for v in std.flatten()),
        normalization="channel",
        source=f"{file} (mean and std per channel)",
    )


def _token_space(tokenizer_spec: str, model: Any) -> LatentSpace:
    side = model.patch_sizes[-1]
    channels = model.config.latent_channels
    return LatentSpace(
        tokenizer=tokenizer_spec,
        latent_shape=(channels, side, side),
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        normalization="none",
        source="token model: no normalisation",
    )


@dataclass
class GeneratorOptions:
    """The options that say how ``--generator`` specs are completed (see the module docstring)."""

    tokenizer: str | None = None
    force_tokenizer: bool = False
    latent_stats: str | None = None
    seed: int = 0


def _choose_tokenizer(
    spec: str, recorded: str | None, options: GeneratorOptions, notes: list[str]
) -> str:
    """The tokenizer spec to decode with: ``--tokenizer`` or the one the latent space records."""
    given = options.tokenizer
    if given is None:
        if recorded is None:
            raise ValueError(
                f"--generator {spec}: give --tokenizer (the tokenizer whose latents it models)"
            )
        return recorded
    if recorded is not None and canonical_tokenizer_spec(given) != canonical_tokenizer_spec(
        recorded
    ):
        if not options.force_tokenizer:
            raise ValueError(
                f"--generator {spec} was trained on the latents of tokenizer {recorded!r}, not "
                f"--tokenizer {given!r}; drop --tokenizer, or add --force-tokenizer to decode "
                "with it anyway"
            )
        notes.append(f"decoded with --tokenizer {given} (forced) instead of {recorded}")
    return given


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


def _official(spec: str, preset: str, file: str, options: GeneratorOptions) -> LoadedGenerator:
    family = _CONFIG_FAMILIES[type(preset_config(preset))]
    if file and not Path(file).exists():
        raise FileNotFoundError(f"--generator {spec}: checkpoint {file} does not exist")
    notes: list[str] = []
    recorded = None
    if family != "var":
        if options.latent_stats is None:
            raise ValueError(
                f"--generator {spec}: a released {preset} needs --latent-stats (upstream's "
                "latents_stats.pt, or a latent_space.json) to undo its latent normalisation"
            )
        if Path(options.latent_stats).suffix == ".json" or Path(options.latent_stats).is_dir():
            recorded = read_latent_stats(options.latent_stats, "", None).tokenizer
    tokenizer_spec = _choose_tokenizer(spec, recorded, options, notes)
    tokenizer = load_tokenizer(tokenizer_spec, seed=options.seed)
    if family == "var":
        model = from_official(preset, file or None, tokenizer=tokenizer.model)
        latent_space = _token_space(tokenizer_spec, model)
    else:
        model = from_official(preset, file or None)
        size = model.config.input_size if family == "flow" else None
        shape = (model.config.in_channels, size, size) if size is not None else None
        latent_space = read_latent_stats(options.latent_stats, tokenizer_spec, shape)
    return LoadedGenerator(
        name=f"{preset} (official)",
        family=family,
        model=model,
        tokenizer=tokenizer,
        tokenizer_spec=tokenizer_spec,
        latent_space=latent_space,
        source=f"official weights {file or preset + ' (cache)'}",
        epochs=_release_epochs(file) if file else None,
        notes=notes,
    )


def _saved(spec: str, found: tuple[Path, str, Path | None], options: GeneratorOptions):
    directory, suffix, run = found
    meta = read_pretrained_meta(directory)
    architecture = meta.get("architecture")
    if architecture not in FAMILIES:
        raise ValueError(
            f"{directory / 'config.json'} names architecture {architecture!r}; freqlat-eval "
            f"generate samples {sorted(FAMILIES)}"
        )
    family = FAMILIES[architecture]
    notes: list[str] = []
    has_space = (directory / LATENT_SPACE_NAME).is_file()
    if has_space and options.latent_stats is not None:
        raise ValueError(
            f"--generator {spec} carries its latent statistics ({directory / LATENT_SPACE_NAME}); "
            "--latent-stats is for released checkpoints and directories without one"
        )
    space = LatentSpace.load(directory) if has_space else None
    if space is None and family != "var" and options.latent_stats is None:
        raise FileNotFoundError(
            f"--generator {spec}: no {LATENT_SPACE_NAME} in {directory}; give --tokenizer and "
            "--latent-stats"
        )
    if space is None and options.latent_stats is not None:
        config = meta.get("config", {})
        shape = None
        if family == "flow":
            shape = (config["in_channels"], config["input_size"], config["input_size"])
        space = read_latent_stats(options.latent_stats, options.tokenizer or "", shape)
    recorded = space.tokenizer if space is not None and space.tokenizer else None
    tokenizer_spec = _choose_tokenizer(spec, recorded, options, notes)
    tokenizer = load_tokenizer(tokenizer_spec, seed=options.seed)
    components = {"tokenizer": tokenizer.model} if family == "var" else {}
    model = Generator.from_pretrained(directory, **components).eval()
    if space is None:
        space = _token_space(tokenizer_spec, model)
    return LoadedGenerator(
        name=f"{meta.get('preset') or (run or directory).name}{suffix}",
        family=family,
        model=model,
        tokenizer=tokenizer,
        tokenizer_spec=tokenizer_spec,
        latent_space=space,
        source=str(directory),
        epochs=_run_epochs(run),
        notes=notes,
    )


def load_generator(spec: str, options: GeneratorOptions) -> LoadedGenerator:
    """The generator ``spec`` names (module docstring), on the CPU in eval mode.

    Anything that does not resolve, or does not fit together (tokenizer, latent shape), is a
    ValueError or FileNotFoundError naming the spec and what is wrong.
    """
    found = _weights_dir(spec)
    if found is not None:
        loaded = _saved(spec, found, options)
    else:
        preset, _, file = spec.partition("=")
        if preset not in list_generators():
            raise FileNotFoundError(
                f"--generator {spec!r} is not a directory, a run directory or PRESET=CHECKPOINT "
                f"of a released generator (presets: {list_generators()})"
            )
        loaded = _official(spec, preset, file, options)
    _check_latents(loaded)
    logger.info("loaded %s (%s), tokenizer %s", loaded.name, loaded.source, loaded.tokenizer.name)
    return loaded
