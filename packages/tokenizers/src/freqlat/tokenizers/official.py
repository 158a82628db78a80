"""Importers for the released weights of the three baseline tokenizers.

The upstream models use the LDM module names that ours keep, so the mapping is nearly the
identity: MAR's and LightningDiT's KL autoencoders map one to one; VAR's attention fuses q, k, v
into one ``qkv`` conv (split here), its phi convs live under ``quantize.quant_resi.qresi_ls``, and
its codebook-usage buffer ``quantize.ema_vocab_hit_SV`` (a training statistic) is dropped.
No sha256 is published for any of these files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from freqlat.tokenizers.base import Tokenizer, load_state_strict
from freqlat.tokenizers.registry import create_tokenizer

CACHE_ENV = "FREQLAT_CACHE"


@dataclass(frozen=True)
class OfficialCheckpoint:
    """Where a released checkpoint comes from and how its weights are stored."""

    preset: str
    filename: str
    url: str
    source: str
    container_keys: tuple[str, ...]
    training_only_prefixes: tuple[str, ...]
    sha256: str = "sha256 not published"


OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    "va-vae-f16d32": OfficialCheckpoint(
        preset="va-vae-f16d32",
        filename="vavae-imagenet256-f16d32-dinov2.pt",
        url="https://huggingface.co/hustvl/vavae-imagenet256-f16d32-dinov2/resolve/main/"
        "vavae-imagenet256-f16d32-dinov2.pt",
        source="hustvl/LightningDiT (tokenizer/autoencoder.py, model_type='vavae')",
        container_keys=("state_dict",),
        # The training checkpoint also holds the loss (LPIPS, discriminator, logvar), the frozen
        # foundation model and the VF projection; none of them is part of the tokenizer.
        training_only_prefixes=("loss.", "foundation_model.", "linear_proj.", "model_ema."),
    ),
    "kl-vae-f16d16": OfficialCheckpoint(
        preset="kl-vae-f16d16",
        filename="kl16.ckpt",
        url="https://www.dropbox.com/scl/fi/hhmuvaiacrarfg28qxhwz/kl16.ckpt"
        "?rlkey=l44xipsezc8atcffdp4q7mwmh&dl=0",
        source="LTH14/mar (models/vae.py, weights under 'model')",
        container_keys=("model",),
        training_only_prefixes=(),
    ),
    "ms-vq-vae": OfficialCheckpoint(
        preset="ms-vq-vae",
        filename="vae_ch160v4096z32.pth",
        url="https://huggingface.co/FoundationVision/var/resolve/main/vae_ch160v4096z32.pth",
        source="FoundationVision/VAR (models/vqvae.py)",
        container_keys=(),
        training_only_prefixes=("quantize.ema_vocab_hit_SV",),
    ),
}


def default_cache_dir(family: str = "tokenizers") -> Path:
    """``$FREQLAT_CACHE/<family>`` if set, else ``~/.cache/freqlat/<family>``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "freqlat"
    return base / family


def _checkpoint_info(preset: str) -> OfficialCheckpoint:
    if preset not in OFFICIAL_CHECKPOINTS:
        raise ValueError(
            f"no official checkpoint for preset {preset!r}; choose one of "
            f"{sorted(OFFICIAL_CHECKPOINTS)}"
        )
    return OFFICIAL_CHECKPOINTS[preset]


def locate_official_file(
    info: OfficialCheckpoint, path: str | Path | None, family: str = "tokenizers"
) -> Path:
    """The local file of release ``info``: ``path`` (a file or its folder) or the family's cache.

    Raises FileNotFoundError naming the file, where it was looked for, its URL and checksum.
    Shared by every model family (``family`` names the cache sub-folder).
    """
    cache = default_cache_dir(family)
    if path is None:
        candidate = cache / info.filename
    else:
        candidate = Path(path)
        if candidate.is_dir():
            candidate = candidate / info.filename
    if not candidate.is_file():
        raise FileNotFoundError(
            f"official {info.preset} checkpoint {info.filename} not found at {candidate}. "
            f"Download it from {info.url} ({info.sha256}) and pass its path, or put it in "
            f"{cache} (set ${CACHE_ENV} to move the cache)."
        )
    return candidate


def resolve_checkpoint_path(preset: str, path: str | Path | None = None) -> Path:
    """The local file of tokenizer ``preset``'s release (see :func:`locate_official_file`)."""
    return locate_official_file(_checkpoint_info(preset), path)


def _unwrap(state: dict, info: OfficialCheckpoint) -> dict[str, Tensor]:
    for key in info.container_keys:
        if key in state and isinstance(state[key], dict):
            state = state[key]
    if not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"{info.filename} does not look like a {info.source} state dict "
            f"(top-level keys {sorted(state)[:8]})"
        )
    return state


def _split_fused_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        if ".qkv." in key:
            prefix, suffix = key.split(".qkv.")
            for name, part in zip(("q", "k", "v"), value.chunk(3, dim=0), strict=True):
                mapped[f"{prefix}.{name}.{suffix}"] = part
        else:
            mapped[key] = value
    return mapped


def map_official_state(
    preset: str, state: dict[str, Tensor]
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename an official state dict to our key names.

    Returns (mapped state, dropped keys): the dropped keys are the training-only entries of the
    release (loss modules, foundation model, VF projection, codebook usage statistics).
    """
    info = _checkpoint_info(preset)
    kept: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if info.training_only_prefixes and key.startswith(info.training_only_prefixes):
            dropped.append(key)
        else:
            kept[key] = value
    if preset == "ms-vq-vae":
        kept = _split_fused_qkv(kept)
        kept = {
            k.replace("quantize.quant_resi.qresi_ls.", "quantize.phi."): v for k, v in kept.items()
        }
    return kept, sorted(dropped)


def from_official(preset: str, path: str | Path | None = None) -> Tokenizer:
    """Our ``preset`` model carrying the released upstream weights.

    ``preset`` is one of ``va-vae-f16d32`` (LightningDiT's vavae-imagenet256-f16d32-dinov2.pt),
    ``kl-vae-f16d16`` (MAR's kl16.ckpt) or ``ms-vq-vae`` (VAR's vae_ch160v4096z32.pth). The file
    is read with ``torch.load(weights_only=True)`` and every key is checked strictly; a
    checkpoint of another architecture raises ValueError naming the mismatching keys.
    """
    info = _checkpoint_info(preset)
    file = resolve_checkpoint_path(preset, path)
    raw = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict):
        raise ValueError(f"{file} holds a {type(raw).__name__}, not a state dict")
    mapped, _ = map_official_state(preset, _unwrap(raw, info))
    model = create_tokenizer(preset)
    load_state_strict(model, mapped, str(file))
    return model.eval()
