"""VAR against FoundationVision/VAR on identical weights, replayed from a committed fixture.

``data/var_official_parity.safetensors`` was written by ``benchmarks/var_parity.py --write-fixture``
from a checkout of the official code (commit in its metadata): the weights of two small
models (the released kind: L2-normalised attention, per-block AdaLN; and shared AdaLN with
plain attention), random inputs, and the official teacher-forcing inputs, logits and greedy
(top_k=1) tokens at two guidance scales.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from freqlat.generators import VAR, VARConfig
from freqlat.tokenizers import MultiScaleResidualQuantizer
from freqlat.tokenizers.configs import config_from_dict
from freqlat.tokenizers.pretrained import load_state_strict

FIXTURE = Path(__file__).parent / "data" / "var_official_parity.safetensors"


def _fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    return meta, tensors


META, TENSORS = _fixture()
CONFIGS = {k: config_from_dict(VARConfig, v) for k, v in json.loads(META["configs"]).items()}


def _part(name: str, prefix: str) -> dict[str, torch.Tensor]:
    start = f"{name}.{prefix}."
    return {k[len(start) :]: v for k, v in TENSORS.items() if k.startswith(start)}


def _model(name: str) -> VAR:
    config = CONFIGS[name]
    quantizer = MultiScaleResidualQuantizer(
        config.latent_channels, config.vocab_size, config.patch_sizes
    )
    load_state_strict(quantizer, {k: v.float() for k, v in _part(name, "quantizer").items()}, "q")
    model = VAR(config, quantizer)
    weights = {k: v.float() for k, v in _part(name, "var").items()}
    model.load_state_dict(weights, strict=False)  # the buffers are the model's own
    assert set(weights) == {k for k, _ in model.named_parameters()}
    return model.eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_teacher_forced_logits_match_the_official_code(name):
    model, io = _model(name), _part(name, "io")
    indices = [io[f"indices.{k}"] for k in range(len(model.patch_sizes))]
    with torch.no_grad():
        x_input = model.teacher_forcing_inputs(indices)
        logits = model(io["labels"], x_input)
    torch.testing.assert_close(x_input, io["x_input"], rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, io["logits"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("cfg", json.loads(META["cfgs"]))
def test_greedy_generation_gives_the_official_tokens(name, cfg):
    model, io = _model(name), _part(name, "io")
    tokens = model.generate(io["generation_labels"], cfg=cfg, top_k=1)
    for scale, got in enumerate(tokens):
        assert torch.equal(got, io[f"tokens.cfg{cfg}.{scale}"]), f"scale {scale}"
