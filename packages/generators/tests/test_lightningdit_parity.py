"""Parity with the official LightningDiT (hustvl/LightningDiT) on identical weights.

The fixture holds the official code's outputs, written by `benchmarks/lightningdit_parity_fixture.py`
from a checkout (which also names the configurations and the sampler settings): the forward in
eval and training mode, the training-loss terms on a fixed (t, x0), and
``Sampler.sample_ode(sampling_method="euler")`` driven by ``forward_with_cfg``.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from freqlat.generators import create_generator, flow_matching_loss, sample_flow
from freqlat.tokenizers.pretrained import load_state_strict

FIXTURE = Path(__file__).parent / "fixtures" / "lightningdit_upstream.safetensors"


def _fixture():
    with safe_open(str(FIXTURE), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        meta = f.metadata()
    return (
        tensors,
        json.loads(meta["configs"]),
        json.loads(meta["samplings"]),
        int(meta["train_seed"]),
    )


TENSORS, CONFIGS, SAMPLINGS, TRAIN_SEED = _fixture()


def _model(name: str):
    prefix = f"{name}/state/"
    state = {k[len(prefix) :]: v for k, v in TENSORS.items() if k.startswith(prefix)}
    model = create_generator("lightningdit-tiny", **CONFIGS[name])
    load_state_strict(model, state, f"fixture {name}")
    return model.eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_matches_the_official_model_in_eval_and_training_mode(name):
    model = _model(name)
    x, t, y = (TENSORS[f"{name}/{k}"] for k in ("x", "t", "y"))
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, y), TENSORS[f"{name}/eval"], rtol=0, atol=1e-5)
        model.train()
        torch.manual_seed(TRAIN_SEED)  # the label dropout draws from the global generator
        torch.testing.assert_close(model(x, t, y), TENSORS[f"{name}/train"], rtol=0, atol=1e-5)
    dropped = (TENSORS[f"{name}/train"] - TENSORS[f"{name}/eval"]).flatten(1).abs().amax(1) > 0
    assert 0 < int(dropped.sum()) < len(y), "the fixture's seed should drop some labels, not all"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loss_terms_match_the_official_transport(name):
    model = _model(name)
    x, t, y, x0 = (TENSORS[f"{name}/{k}"] for k in ("x", "t", "y", "x0"))
    with torch.no_grad():
        terms = flow_matching_loss(model, x, y, x0=x0, t=t)
    torch.testing.assert_close(
        terms["mse"].reshape(1), TENSORS[f"{name}/loss_mse"], rtol=1e-6, atol=0
    )
    torch.testing.assert_close(
        terms["cosine"].reshape(1), TENSORS[f"{name}/loss_cos"], rtol=1e-6, atol=0
    )


@pytest.mark.parametrize("index", range(len(SAMPLINGS)))
def test_euler_sampler_matches_the_official_ode_sampler(index):
    steps, shift, cfg, start = SAMPLINGS[index]
    model = _model("release")
    noise, labels = TENSORS[f"sample{index}/noise"], TENSORS[f"sample{index}/labels"]
    ours = sample_flow(
        model, noise, labels, steps=steps, cfg_scale=cfg, cfg_interval_start=start,
        timestep_shift=shift,
    )  # fmt: skip
    reference = TENSORS[f"sample{index}/result"]
    assert (ours - reference).abs().max() <= 1e-3 * reference.abs().max()
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
