"""The released class-conditional ImageNet LDM (CompVis/latent-diffusion ``cin256-v2``).

The release is a PyTorch Lightning checkpoint: a dict whose ``"state_dict"`` holds the UNet under
``model.diffusion_model.*``, the class embedder as ``cond_stage_model.embedding.weight``
(1001 x 512), and parts we do not use: the first-stage VQ autoencoder (``first_stage_model.*``)
and the DDPM schedule buffers (``betas``, ``alphas_cumprod``, ...). The UNet and the embedder are
loaded strictly; every other key is ignored and listed in the log. When the checkpoint carries
``alphas_cumprod``, it must match the preset's schedule.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
from torch import Tensor

from freqlat.generators.ldm_unet import LDMUNet
from freqlat.generators.registry import create_generator, register_official
from freqlat.tokenizers.official import OfficialCheckpoint, locate_official_file
from freqlat.tokenizers.pretrained import load_state_strict

logger = logging.getLogger(__name__)

CIN256_V2 = OfficialCheckpoint(
    preset="ldm-cin256-v2",
    filename="cin256-v2.ckpt",
    # Upstream's notebook (scripts/latent_imagenet_diffusion.ipynb) downloads this URL as
    # models/ldm/cin256-v2/model.ckpt (1,827,378,153 bytes); save it as cin256-v2.ckpt.
    url="https://ommer-lab.com/files/latent-diffusion/nitro/cin/model.ckpt",
    source="CompVis/latent-diffusion (configs/latent-diffusion/cin256-v2.yaml)",
    container_keys=("state_dict",),
    training_only_prefixes=(),
)

UNET_PREFIX = "model.diffusion_model."
EMBEDDER_PREFIX = "cond_stage_model."


def map_official_ldm_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a latent-diffusion ``state_dict`` to :class:`LDMUNet` keys.

    Returns (kept, ignored): ``model.diffusion_model.<k>`` becomes ``<k>`` and
    ``cond_stage_model.<k>`` becomes ``class_embedder.<k>``; every other key is ignored.
    """
    kept: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if key.startswith(UNET_PREFIX):
            kept[key[len(UNET_PREFIX) :]] = value
        elif key.startswith(EMBEDDER_PREFIX):
            kept["class_embedder." + key[len(EMBEDDER_PREFIX) :]] = value
        else:
            ignored.append(key)
    return kept, sorted(ignored)


def _summary(keys: list[str]) -> str:
    groups: dict[str, int] = {}
    for key in keys:
        head = key.split(".", 1)[0]
        name = f"{head}.*" if "." in key else key
        groups[name] = groups.get(name, 0) + 1
    return ", ".join(f"{name} ({count})" if count > 1 else name for name, count in groups.items())


def _read_state(file: Path) -> dict[str, Tensor]:
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(
            f"{file} cannot be read with torch.load(weights_only=True): {error}"
        ) from error
    state = raw.get("state_dict") if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        keys = sorted(raw)[:8] if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(
            f"{file} is not a latent-diffusion checkpoint: expected a dict with 'state_dict', "
            f"got {keys}"
        )
    bad = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if bad:
        raise ValueError(f"{file}: state_dict entries {bad[:8]} are not tensors")
    return state


def _check_schedule(state: dict[str, Tensor], model: LDMUNet, file: Path) -> None:
    released = state.get("alphas_cumprod")
    if released is None:
        return
    ours = model.schedule.alphas_cumprod
    if released.shape != ours.shape or not torch.allclose(
        released.float(), ours, rtol=0.0, atol=1e-6
    ):
        raise ValueError(
            f"{file} was trained with another DDPM schedule than preset {model.preset!r} "
            f"({model.config.schedule}): its alphas_cumprod differ"
        )


def load_official_ldm(name: str, path: str | Path | None = None) -> LDMUNet:
    """Preset ``name`` (``ldm-cin256-v2``) carrying the released weights.

    ``path`` is the checkpoint or its folder (default: ``$FREQLAT_CACHE/generators``). A missing
    file, a file that is not a latent-diffusion checkpoint, or missing, unexpected or misshapen
    UNet/embedder keys raise errors naming them.
    """
    file = locate_official_file(CIN256_V2, path, family="generators")
    state = _read_state(file)
    kept, ignored = map_official_ldm_state(state)
    if not any(not k.startswith("class_embedder.") for k in kept):
        raise ValueError(
            f"{file} has no '{UNET_PREFIX}*' keys: not a latent-diffusion checkpoint "
            f"(first keys {sorted(state)[:8]})"
        )
    model = create_generator(name)
    _check_schedule(state, model, file)
    load_state_strict(model, kept, str(file))
    if ignored:
        logger.info("%s: ignored %d keys: %s", file, len(ignored), _summary(ignored))
    return model.eval()


register_official([CIN256_V2.preset], load_official_ldm)
