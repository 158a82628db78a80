"""The released VAR weights (FoundationVision/VAR): bare state dicts with upstream's key names.

``var_d16.pth`` ... ``var_d30.pth`` hold every parameter and the buffers ``lvl_1L``,
``attn_bias_for_masking`` and ``blocks.*.attn.zero_k_bias``; our module names are upstream's, so
the files load as they are, every key and shape checked. They were trained on the tokens of
``vae_ch160v4096z32.pth`` (``freqlat.tokenizers.from_official("ms-vq-vae")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from freqlat.generators.registry import create_generator, register_official
from freqlat.generators.var import VAR, VAR_PRESETS, block_causal_bias, scale_levels
from freqlat.tokenizers.official import OfficialCheckpoint, locate_official_file
from freqlat.tokenizers.pretrained import load_state_strict

_URL = "https://huggingface.co/FoundationVision/var/resolve/main/"

VAR_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    f"var-d{depth}": OfficialCheckpoint(
        preset=f"var-d{depth}",
        filename=f"var_d{depth}.pth",
        url=f"{_URL}var_d{depth}.pth",
        source="FoundationVision/VAR (models/var.py, build_vae_var in models/__init__.py)",
        container_keys=(),
        training_only_prefixes=(),
    )
    for depth in (16, 20, 24, 30)
}


def _check_fixed_buffers(model: VAR, file: Path) -> None:
    """The buffers a release carries must be the ones this config implies."""
    expected = {
        "lvl_1L": scale_levels(model.patch_sizes),
        "attn_bias_for_masking": block_causal_bias(model.patch_sizes),
    }
    for name, buffer in model.named_buffers():
        wanted = expected.get(name, torch.zeros_like(buffer))  # the zero k biases
        if not torch.equal(buffer, wanted):
            raise ValueError(
                f"{file}: buffer {name} differs from the one {model.preset} implies "
                f"(patch sizes {model.patch_sizes}); the file is not a {model.preset} release"
            )


def load_official_var(name: str, path: str | Path | None = None, tokenizer: Any = None) -> VAR:
    """Preset ``name`` (``var-d16`` ... ``var-d30``) with its released weights, in eval mode.

    ``path`` is the file or its folder (default ``$FREQLAT_CACHE/generators``); the file is read
    with ``torch.load(weights_only=True)``. Missing, unexpected or misshapen keys, fixed buffers
    that differ from ours and a tokenizer whose codebook does not match raise ValueError.
    """
    if name not in VAR_CHECKPOINTS:
        raise ValueError(f"no released VAR for {name!r}; choose one of {sorted(VAR_CHECKPOINTS)}")
    info = VAR_CHECKPOINTS[name]
    file = locate_official_file(info, path, family="generators")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{file} is not a bare state dict of tensors ({info.source})")
    # Built without initialising (every tensor comes from the file, checked by key and shape).
    with torch.device("meta"):
        model = create_generator(name, tokenizer=tokenizer)
    model = model.to_empty(device="cpu")
    load_state_strict(model, state, str(file))
    _check_fixed_buffers(model, file)
    return model.eval()


register_official([n for n in VAR_PRESETS if n in VAR_CHECKPOINTS], load_official_var)
