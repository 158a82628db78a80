"""Official checkpoint import: key mapping against committed manifests of the upstream models."""

import json
from importlib import resources

import pytest
import torch

from freqlat.tokenizers import OFFICIAL_CHECKPOINTS, create_tokenizer, from_official
from freqlat.tokenizers.official import map_official_state


def _manifest(preset):
    text = resources.files("freqlat.tokenizers").joinpath("manifests", f"{preset}.json").read_text()
    return json.loads(text)["keys"]


@pytest.mark.parametrize("preset", sorted(OFFICIAL_CHECKPOINTS))
def test_official_keys_map_onto_our_model_exactly(preset):
    with torch.device("meta"):
        state = {k: torch.empty(shape) for k, shape in _manifest(preset).items()}
        ours = create_tokenizer(preset).state_dict()
    mapped, dropped = map_official_state(preset, state)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {
        k: tuple(v.shape) for k, v in ours.items()
    }
    assert dropped == (["quantize.ema_vocab_hit_SV"] if preset == "ms-vq-vae" else [])


def test_var_fused_attention_is_split_into_q_k_v_in_order():
    qkv = torch.arange(6.0).view(6, 1, 1, 1)
    mapped, _ = map_official_state("ms-vq-vae", {"encoder.mid.attn_1.qkv.weight": qkv})
    assert [mapped[f"encoder.mid.attn_1.{n}.weight"].flatten().tolist() for n in "qkv"] == [
        [0.0, 1.0],
        [2.0, 3.0],
        [4.0, 5.0],
    ]


def test_training_only_entries_of_the_vavae_release_are_dropped():
    state = {
        "loss.logvar": torch.zeros(()),
        "linear_proj.weight": torch.zeros(2),
        "quant_conv.bias": torch.zeros(2),
    }
    mapped, dropped = map_official_state("va-vae-f16d32", state)
    assert list(mapped) == ["quant_conv.bias"] and dropped == ["linear_proj.weight", "loss.logvar"]


def test_missing_file_names_file_place_url_and_checksum(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        from_official("kl-vae-f16d16", tmp_path)
    message = str(error.value)
    assert "kl16.ckpt" in message and str(tmp_path) in message
    assert "dropbox.com" in message and "sha256 not published" in message


def test_unknown_official_preset_names_the_choices():
    with pytest.raises(ValueError, match="ms-vq-vae"):
        from_official("fa-vae-f16d64")


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    with torch.device("meta"):
        foreign = create_tokenizer("kl-vae-f16d16-tiny").state_dict()
    torch.save(
        {"model": {k: torch.zeros(v.shape) for k, v in foreign.items()}}, tmp_path / "kl16.ckpt"
    )
    with pytest.raises(ValueError, match=r"missing keys.*shape mismatches"):
        from_official("kl-vae-f16d16", tmp_path / "kl16.ckpt")
