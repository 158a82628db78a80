"""Released VAR weights: upstream's key names, strict loading, and errors that name the problem."""

import json
from pathlib import Path

import pytest
import torch

from freqlat.generators import VAR_CHECKPOINTS, create_generator, from_official, var_official
from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.official import OfficialCheckpoint

DATA = Path(__file__).parent / "data"


def test_var_d16_state_dict_has_upstreams_keys_and_shapes():
    # written by benchmarks/var_parity.py --write-manifest from the official constructor
    manifest = json.loads((DATA / "var-d16-keys.json").read_text())["keys"]
    with torch.device("meta"):
        ours = create_generator("var-d16").state_dict()
    assert {k: list(v.shape) for k, v in ours.items()} == manifest
    assert {"lvl_1L", "attn_bias_for_masking", "blocks.15.attn.zero_k_bias"} <= set(manifest)


@pytest.fixture
def tiny_release(monkeypatch, tiny_var, tmp_path):
    """``var-tiny`` treated as a released model: its state dict saved bare as var_tiny.pth."""
    info = OfficialCheckpoint(
        preset="var-tiny", filename="var_tiny.pth", url="https://example.invalid/var_tiny.pth",
        source="test", container_keys=(), training_only_prefixes=(),
    )  # fmt: skip
    monkeypatch.setitem(var_official.VAR_CHECKPOINTS, "var-tiny", info)
    state = {k: v.clone() for k, v in tiny_var.state_dict().items()}
    torch.save(state, tmp_path / "var_tiny.pth")
    return state, tmp_path


def test_a_release_loads_every_key_strictly(tiny_release, tiny_tokenizer):
    state, folder = tiny_release
    model = var_official.load_official_var("var-tiny", folder, tokenizer=tiny_tokenizer)
    assert not model.training and model.quantizer is tiny_tokenizer.quantize
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("head.bias"), r"missing keys \['head.bias'\]"),
        (lambda s: s.update(extra=torch.zeros(1)), r"unexpected keys \['extra'\]"),
        (lambda s: s.update({"head.bias": torch.zeros(7)}), r"head.bias: checkpoint \(7,\) vs model \(256,\)"),
        (lambda s: s["attn_bias_for_masking"].zero_(), "buffer attn_bias_for_masking differs"),
        (lambda s: s["blocks.1.attn.zero_k_bias"].fill_(1), "buffer blocks.1.attn.zero_k_bias differs"),
    ],
)  # fmt: skip
def test_a_damaged_release_is_refused_with_the_key_named(tiny_release, edit, message):
    state, folder = tiny_release
    edit(state)
    torch.save(state, folder / "var_tiny.pth")
    with pytest.raises(ValueError, match=message):
        var_official.load_official_var("var-tiny", folder)


def test_a_release_with_a_foreign_tokenizer_is_refused(tiny_release):
    _, folder = tiny_release
    with pytest.raises(ValueError, match="codebook 128 x 32"):
        var_official.load_official_var(
            "var-tiny", folder, tokenizer=create_tokenizer("ms-vq-vae-tiny", vocab_size=128)
        )


def test_a_file_that_is_not_a_state_dict_is_refused(tiny_release):
    _, folder = tiny_release
    torch.save({"model": {"a": torch.zeros(1)}}, folder / "var_tiny.pth")
    with pytest.raises(ValueError, match="not a bare state dict"):
        var_official.load_official_var("var-tiny", folder)


def test_a_missing_release_names_file_place_url_and_checksum(tmp_path):
    assert sorted(VAR_CHECKPOINTS) == ["var-d16", "var-d20", "var-d24", "var-d30"]
    with pytest.raises(FileNotFoundError) as error:
        from_official("var-d20", tmp_path)
    message = str(error.value)
    assert "var_d20.pth" in message and str(tmp_path) in message
    assert "huggingface.co/FoundationVision/var" in message and "sha256 not published" in message


def test_the_cache_is_the_generators_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "generators" / "var_d16.pth")):
        from_official("var-d16")


def test_presets_without_a_release_say_which_have_one():
    with pytest.raises(ValueError, match="no released checkpoint loads into preset 'var-tiny'"):
        from_official("var-tiny")
