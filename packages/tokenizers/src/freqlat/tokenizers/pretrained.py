"""Weights on disk, shared by every freqlat model family (tokenizers and generators).

A pretrained directory holds ``model.safetensors`` (the state dict) and ``config.json``
(``{"architecture", "preset", "config"}``). :func:`write_pretrained` writes one,
:func:`read_pretrained_meta` reads and checks the config file, :func:`load_state_strict` loads a
state dict naming every missing, unexpected or misshapen key. Model families keep their own
architecture registries and call these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from freqlat.tokenizers.configs import config_to_dict

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def write_pretrained(
    model: nn.Module, directory: str | Path, architecture: str, preset: str | None, config: Any
) -> Path:
    """Write ``model``'s state dict and its config into ``directory`` (created if needed)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / WEIGHTS_NAME))
    meta = {"architecture": architecture, "preset": preset, "config": config_to_dict(config)}
    (path / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def read_pretrained_meta(directory: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a pretrained directory (FileNotFoundError if incomplete)."""
    path = Path(directory)
    for needed in (path / CONFIG_NAME, path / WEIGHTS_NAME):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed.name} not found in {path}")
    return json.loads((path / CONFIG_NAME).read_text())


def load_pretrained_weights(model: nn.Module, directory: str | Path, map_location: str) -> None:
    """Load ``directory``'s ``model.safetensors`` into ``model`` strictly."""
    path = Path(directory)
    load_state_strict(model, load_file(str(path / WEIGHTS_NAME), device=map_location), str(path))


def load_state_strict(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load ``state`` into ``model``; ValueError naming missing, unexpected or misshapen keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or misshapen:
        raise ValueError(
            f"checkpoint {source} does not match {type(model).__name__}: "
            f"missing keys {missing}, unexpected keys {unexpected}, shape mismatches {misshapen}"
        )
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
