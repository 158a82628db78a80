"""Released LightningDiT weights and latent statistics (hustvl/LightningDiT, Hugging Face hub).

The released generators (`lightningdit-xl-imagenet256-64ep.pt`, `-800ep.pt`) and train.py's
checkpoints are torch.save'd dicts: the weights sit under "ema" and/or "model" (train.py writes
``{"model", "ema", "opt", "config"}``); upstream's inference.py uses "ema" when present, and so do
we. Upstream's parameter names are ours, so the state dict loads as it is, strictly; the fixed
tables it carries (``pos_embed``, ``feat_rope.freqs_cos``/``freqs_sin``) must equal ours. No
sha256 is published for these files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from freqlat.generators.lightningdit import PRESETS, LightningDiT
from freqlat.generators.registry import create_generator, register_official
from freqlat.tokenizers.official import OfficialCheckpoint, default_cache_dir, locate_official_file
from freqlat.tokenizers.pretrained import load_state_strict

_HUB = "https://huggingface.co/hustvl"
RELEASES: dict[str, OfficialCheckpoint] = {
    epochs: OfficialCheckpoint(
        preset="lightningdit-xl-1",
        filename=f"lightningdit-xl-imagenet256-{epochs}.pt",
        url=f"{_HUB}/lightningdit-xl-imagenet256-{epochs}/resolve/main/"
        f"lightningdit-xl-imagenet256-{epochs}.pt",
        source="hustvl/LightningDiT (models/lightningdit.py LightningDiT-XL/1 on VA-VAE f16d32)",
        container_keys=("ema", "model"),
        training_only_prefixes=(),
    )
    for epochs in ("64ep", "800ep")
}
LATENT_STATS = OfficialCheckpoint(
    preset="va-vae-f16d32",
    filename="latents_stats.pt",
    url=f"{_HUB}/vavae-imagenet256-f16d32-dinov2/resolve/main/latents_stats.pt",
    source="hustvl/LightningDiT (datasets/img_latent_dataset.py: mean/std of 10k train latents)",
    container_keys=("mean", "std"),
    training_only_prefixes=(),
)
# The fixed tables a checkpoint carries, compared with ours before loading.
FIXED_TABLES = ("pos_embed", "feat_rope.freqs_cos", "feat_rope.freqs_sin")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _locate_release(name: str, path: str | Path | None) -> Path:
    """The checkpoint file for preset ``name``: ``path`` if it is a file, else a release of
    LightningDiT-XL/1 (64 epochs, then 800) in ``path`` or the cache."""
    if path is not None and Path(path).is_file():
        return Path(path)
    if name != "lightningdit-xl-1":
        where = path if path is not None else default_cache_dir("generators")
        raise FileNotFoundError(
            f"no LightningDiT checkpoint for preset {name!r} at {where}: upstream releases only "
            f"XL/1 ({', '.join(r.filename for r in RELEASES.values())}); pass the path of a "
            "train.py checkpoint of this size"
        )
    errors = []
    for release in RELEASES.values():
        try:
            return locate_official_file(release, path, family="generators")
        except FileNotFoundError as error:
            errors.append(str(error))
    raise FileNotFoundError(" | ".join(errors))


def official_state_dict(raw: object, source: str) -> dict[str, Tensor]:
    """The generator weights of a loaded LightningDiT checkpoint: "ema", else "model", else the
    dict itself when it is a bare state dict; wrapper prefixes (DDP's ``module.``, torch.compile's
    ``_orig_mod.``) shared by every key are removed."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source} holds a {type(raw).__name__}, not a checkpoint dict")
    for key in ("ema", "model"):
        if isinstance(raw.get(key), dict):
            raw = raw[key]
            break
    else:
        if not all(isinstance(v, Tensor) for v in raw.values()):
            raise ValueError(
                f"{source} has no 'ema' or 'model' state dict (top-level keys {sorted(raw)[:8]})"
            )
    state = dict(raw)
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def check_fixed_tables(model: LightningDiT, state: dict[str, Tensor], source: str) -> None:
    """ValueError unless the checkpoint's position and RoPE tables equal the model's own."""
    expected = model.state_dict()
    for key in FIXED_TABLES:
        if key not in state or key not in expected or state[key].shape != expected[key].shape:
            continue  # a missing or misshapen key is reported by the strict load
        diff = (state[key].float() - expected[key].float()).abs().max().item()
        if diff > 1e-5:
            raise ValueError(
                f"checkpoint {source}: {key} differs from the table this model computes by "
                f"{diff:.3g} (max abs): not a LightningDiT of this configuration"
            )


def load_official_lightningdit(name: str, path: str | Path | None = None) -> LightningDiT:
    """Preset ``name`` (any LightningDiT size) carrying the weights of a LightningDiT checkpoint.

    ``path`` is the checkpoint file, or a folder holding a release of XL/1; without it the
    release is looked for in ``$FREQLAT_CACHE/generators``. Read with
    ``torch.load(weights_only=True)``; the latent channels follow the checkpoint's patch
    embedding (32 for VA-VAE, 64 for FA-VAE f16d64); every key is checked strictly.
    """
    file = _locate_release(name, path)
    raw = torch.load(file, map_location="cpu", weights_only=True)
    state = official_state_dict(raw, str(file))
    patch = state.get("x_embedder.proj.weight")
    overrides = {} if patch is None or patch.dim() != 4 else {"in_channels": patch.shape[1]}
    model = create_generator(name, **overrides)
    check_fixed_tables(model, state, str(file))
    load_state_strict(model, state, str(file))
    return model.eval()


def load_official_latent_stats(path: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """(mean, std), each 1 x C x 1 x 1, of upstream's ``latents_stats.pt`` (VA-VAE f16d32 latents).

    Latents are normalised as ``(z - mean) / std`` for training and mapped back as
    ``z * std + mean`` before decoding. ``path`` is the file or its folder, else the cache.
    """
    file = locate_official_file(LATENT_STATS, path, family="generators")
    raw = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(k), Tensor) for k in ("mean", "std")
    ):
        raise ValueError(f"{file} does not hold a {{'mean', 'std'}} dict of tensors")
    mean, std = raw["mean"].float(), raw["std"].float()
    if mean.dim() != 4 or mean.shape != std.shape or mean.shape[0] != 1 or mean.shape[2:] != (1, 1):
        raise ValueError(
            f"{file}: mean {tuple(mean.shape)} and std {tuple(std.shape)} must both be 1 x C x 1 x 1"
        )
    if not bool((std > 0).all()):
        raise ValueError(f"{file}: std has non-positive entries")
    return mean, std


register_official(PRESETS, load_official_lightningdit)
