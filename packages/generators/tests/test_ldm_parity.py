"""Parity with CompVis/latent-diffusion's own code on identical weights and inputs.

``data/ldm_upstream.safetensors`` holds upstream's outputs (UNet eps, the training loss, DDIM
with guidance, DDIM with eta > 0 and per-sample noise, ancestral DDPM) for weights that
``make_ldm_fixture.py`` draws from a seed; it made the file from a checkout of upstream.
"""

import json
from pathlib import Path

import pytest
from safetensors import safe_open

FIXTURE = Path(__file__).resolve().parent / "data" / "ldm_upstream.safetensors"
# eps and the loss to 1e-5, the samplers to 1e-3 (relative to the largest reference value)
TOLERANCES = {"eps": 1e-5, "loss": 1e-5, "ddim_cfg": 1e-3, "ddim_eta": 1e-3, "ddpm": 1e-3}


def _case(name):
    with safe_open(str(FIXTURE), "pt") as handle:
        meta = json.loads(handle.metadata()["meta"])
        prefix = f"{name}."
        names = [k for k in handle.keys() if k.startswith(prefix)]  # noqa: SIM118 (not a dict)
        stored = {k[len(prefix) :]: handle.get_tensor(k) for k in names}
    return meta, stored


def _compare(ldm_reference, name):
    meta, stored = _case(name)
    case = ldm_reference.CASES[name]
    assert meta[name]["preset"] == case.preset and meta[name]["overrides"] == case.overrides
    model = ldm_reference.build_ours(case)
    inputs = {k: stored[k] for k in ("x", "t", "y", "loss_noise", "x_T")}
    ours = ldm_reference.ours_outputs(model, case, inputs)
    assert set(ours) == set(stored) - set(inputs)
    errors = {k: ldm_reference.relative_error(ours[k], stored[k]) for k in ours}
    assert all(errors[k] < TOLERANCES[k] for k in errors), errors


def test_tiny_unet_objective_and_samplers_match_upstream(ldm_reference):
    _compare(ldm_reference, "tiny")


@pytest.mark.slow
def test_released_architecture_matches_upstream(ldm_reference):
    _compare(ldm_reference, "cin256-v2")
