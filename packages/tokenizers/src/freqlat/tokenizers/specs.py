"""Turn a tokenizer spec (a ``--tokenizer`` argument) into a model, and say where its weights are from.

The spec is what ``freqlat-eval`` and the tools take. Accepted forms:

- a directory written by ``save_pretrained`` (``model.safetensors`` + ``config.json``);
- a ``freqlat-train`` run directory: its ``export/ema`` weights (``export/model`` with ``:raw``
  appended, e.g. ``runs/fa-vae-f16d32-tiny:raw``);
- an official preset name (``va-vae-f16d32``, ``kl-vae-f16d16``, ``ms-vq-vae``): the released
  checkpoint from the tokenizers cache, or ``PRESET=PATH`` for an explicit file;
- ``random:PRESET``: the preset with freshly initialised weights (seeded), labelled as such, for
  smoke tests and baselines of the pipeline itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from freqlat.tokenizers.base import Tokenizer
from freqlat.tokenizers.official import OFFICIAL_CHECKPOINTS, from_official
from freqlat.tokenizers.registry import create_tokenizer, list_tokenizers

RANDOM_PREFIX = "random:"
RAW_SUFFIX = ":raw"


@dataclass
class LoadedTokenizer:
    """A tokenizer ready to evaluate: its table name, the model, and where its weights are from."""

    name: str
    model: Tokenizer
    source: str


def _is_pretrained_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def load_tokenizer(spec: str, seed: int = 0) -> LoadedTokenizer:
    """Load the tokenizer ``spec`` names (see the module docstring) in eval mode on the CPU.

    Anything that does not resolve is a ValueError or FileNotFoundError saying what was tried.
    """
    if spec.startswith(RANDOM_PREFIX):
        preset = spec.removeprefix(RANDOM_PREFIX)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = create_tokenizer(preset)
        finally:
            torch.random.set_rng_state(generator_state)
        return LoadedTokenizer(
            f"{preset} (random weights)", model.eval(), f"random init, seed {seed}"
        )
    raw = spec.endswith(RAW_SUFFIX)
    path = Path(spec.removesuffix(RAW_SUFFIX))
    if path.is_dir():
        export = path / "export" / ("model" if raw else "ema")
        if _is_pretrained_dir(export):
            model = Tokenizer.from_pretrained(export)
            label = f"{getattr(model, 'preset', None) or path.name} ({'raw' if raw else 'EMA'})"
            return LoadedTokenizer(label, model.eval(), str(export))
        if _is_pretrained_dir(path) and not raw:
            model = Tokenizer.from_pretrained(path)
            return LoadedTokenizer(
                getattr(model, "preset", None) or path.name, model.eval(), str(path)
            )
        raise FileNotFoundError(
            f"{path} is neither a save_pretrained directory (config.json + model.safetensors) "
            f"nor a freqlat-train run directory with {export}"
        )
    preset, _, file = spec.partition("=")
    if preset in OFFICIAL_CHECKPOINTS:
        model = from_official(preset, file or None)
        return LoadedTokenizer(
            f"{preset} (official)", model.eval(), f"official weights of {preset}"
        )
    if preset in list_tokenizers():
        raise ValueError(
            f"preset {preset!r} has no released weights; give a trained directory, a "
            f"freqlat-train run directory, or {RANDOM_PREFIX}{preset} for random weights"
        )
    raise FileNotFoundError(
        f"--tokenizer {spec!r} is not a directory, an official preset "
        f"({sorted(OFFICIAL_CHECKPOINTS)}) or {RANDOM_PREFIX}PRESET"
    )


def unique_names(names: Sequence[str]) -> list[str]:
    """Make table names unique by numbering repeats (``name``, ``name #2``, ...)."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique
