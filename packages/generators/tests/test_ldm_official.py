"""Import of the released cin256-v2 checkpoint: key mapping against the committed manifest of
upstream's model, the release's container, and clear errors for files that do not fit."""

import json
import logging
from importlib import resources

import pytest
import torch

from freqlat.generators import create_generator, from_official
from freqlat.generators.ldm_official import load_official_ldm, map_official_ldm_state


def _manifest():
    text = resources.files("freqlat.generators").joinpath("manifests", "ldm-cin256-v2.json")
    return json.loads(text.read_text())["keys"]


def test_released_keys_map_onto_our_model_exactly(on_meta):
    manifest = _manifest()
    with torch.device("meta"):
        state = {k: torch.empty(shape) for k, shape in manifest.items()}
    state["first_stage_model.quantize.embedding.weight"] = torch.empty(8192, 3, device="meta")
    mapped, ignored = map_official_ldm_state(state)
    ours = on_meta("ldm-cin256-v2").state_dict()
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {
        k: tuple(v.shape) for k, v in ours.items()
    }
    assert ignored == ["first_stage_model.quantize.embedding.weight"]
    assert manifest["cond_stage_model.embedding.weight"] == [1001, 512]


def _release_like(model, **extra_state):
    """``model``'s weights in the release's container, with the parts upstream also saves."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("class_embedder."):
            state["cond_stage_model." + key[len("class_embedder.") :]] = value.clone()
        else:
            state["model.diffusion_model." + key] = value.clone()
    schedule = model.schedule
    state.update(
        {
            "betas": schedule.betas.float(),
            "alphas_cumprod": schedule.alphas_cumprod.clone(),
            "first_stage_model.decoder.conv_out.weight": torch.zeros(3, 128, 3, 3),
            "first_stage_model.quantize.embedding.weight": torch.zeros(16, 3),
        }
    )
    state.update(extra_state)
    return {"state_dict": state, "epoch": 3, "global_step": 7}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_generator("ldm-tiny")


def test_release_container_loads_strictly_and_reports_what_it_ignores(tiny, tmp_path, caplog):
    file = tmp_path / "cin256-v2.ckpt"
    torch.save(_release_like(tiny), file)
    with caplog.at_level(logging.INFO, logger="freqlat.generators.ldm_official"):
        loaded = load_official_ldm("ldm-tiny", file)
    assert not loaded.training and loaded.preset == "ldm-tiny"
    for key, value in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert "ignored 4 keys: alphas_cumprod, betas, first_stage_model.* (2)" in caplog.text
    loaded = load_official_ldm("ldm-tiny", tmp_path)  # the folder holding cin256-v2.ckpt
    assert torch.equal(loaded.out[2].weight, tiny.out[2].weight)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", r"missing keys \['out.2.bias'\]"),
        ("extra", r"unexpected keys \['extra.weight'\]"),
        ("shape", r"shape mismatches \['out.2.bias: checkpoint \(3,\) vs model \(16,\)'\]"),
        ("embedder", r"unexpected keys \['class_embedder.extra'\]"),
    ],
)
def test_keys_that_do_not_fit_are_named(tiny, tmp_path, change, message):
    release = _release_like(tiny)
    state = release["state_dict"]
    if change == "drop":
        del state["model.diffusion_model.out.2.bias"]
    elif change == "extra":
        state["model.diffusion_model.extra.weight"] = torch.zeros(1)
    elif change == "shape":
        state["model.diffusion_model.out.2.bias"] = torch.zeros(3)
    else:
        state["cond_stage_model.extra"] = torch.zeros(1)
    torch.save(release, tmp_path / "cin256-v2.ckpt")
    with pytest.raises(ValueError, match=message):
        load_official_ldm("ldm-tiny", tmp_path / "cin256-v2.ckpt")


def test_a_checkpoint_of_another_schedule_is_refused(tiny, tmp_path):
    other = create_generator("ldm-tiny", schedule={"linear_end": 0.02}).schedule
    torch.save(_release_like(tiny, alphas_cumprod=other.alphas_cumprod), tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="another DDPM schedule"):
        load_official_ldm("ldm-tiny", tmp_path / "c.ckpt")


def test_files_that_are_not_latent_diffusion_checkpoints_are_refused(tiny, tmp_path):
    file = tmp_path / "c.ckpt"
    torch.save({"model": {"w": torch.zeros(1)}}, file)
    with pytest.raises(ValueError, match="expected a dict with 'state_dict'"):
        load_official_ldm("ldm-tiny", file)
    torch.save({"state_dict": {"first_stage_model.w": torch.zeros(1)}}, file)
    with pytest.raises(ValueError, match=r"no 'model\.diffusion_model\.\*' keys"):
        load_official_ldm("ldm-tiny", file)
    torch.save({"state_dict": {"model.diffusion_model.w": torch.zeros(1)}, "cfg": object()}, file)
    with pytest.raises(ValueError, match=r"cannot be read with torch.load\(weights_only=True\)"):
        load_official_ldm("ldm-tiny", file)


def test_a_missing_release_names_the_file_the_url_and_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as error:
        from_official("ldm-cin256-v2")
    message = str(error.value)
    assert "cin256-v2.ckpt" in message and str(tmp_path / "cache" / "generators") in message
    assert "ommer-lab.com/files/latent-diffusion/nitro/cin/model.ckpt" in message
    with pytest.raises(ValueError, match="no released checkpoint loads into preset 'ldm-tiny'"):
        from_official("ldm-tiny")
