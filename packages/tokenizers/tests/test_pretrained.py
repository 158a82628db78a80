"""save_pretrained / from_pretrained: safetensors round trip and strict loading."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from freqlat.tokenizers import (
    AutoencoderKL,
    MultiScaleVQVAE,
    create_tokenizer,
    from_pretrained,
)


@pytest.mark.parametrize("name", ["va-vae-f16d32-tiny", "ms-vq-vae-tiny", "fa-vae-f16d32-tiny"])
def test_round_trip_restores_weights_config_and_outputs(tmp_path, smooth_images, name):
    torch.manual_seed(0)
    model = create_tokenizer(name, ch=32) if "fa-vae" not in name else create_tokenizer(name)
    model.eval()
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["preset"] == name and meta["architecture"] == model.architecture
    loaded = from_pretrained(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    size = 64 if "vq" in name else 32
    x = smooth_images[:1, :, :size, :size]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, sample=False).recon, model(x, sample=False).recon)


def test_latent_statistics_are_saved_beside_the_weights(tmp_path):
    model = create_tokenizer("fa-vae-f16d32-tiny")
    stats = model.new_latent_statistics()
    stats.update(torch.randn(4, 32, 2, 2))
    model.latent_stats = stats
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert loaded.latent_stats.groups == {"high": (0, 8), "low": (8, 32)}
    torch.testing.assert_close(loaded.latent_stats.channel_std, stats.channel_std)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    create_tokenizer("kl-vae-f16d16-tiny").save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights.pop("quant_conv.bias")
    weights["extra.weight"] = torch.zeros(1)
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing keys \['quant_conv.bias'\].*extra.weight"):
        from_pretrained(tmp_path)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    create_tokenizer("ms-vq-vae-tiny").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"multiscale-vqvae.*not a 'kl-autoencoder'"):
        AutoencoderKL.from_pretrained(tmp_path)
    assert isinstance(MultiScaleVQVAE.from_pretrained(tmp_path), MultiScaleVQVAE)


def test_weights_of_another_shape_are_refused(tmp_path):
    create_tokenizer("va-vae-f16d32-tiny").save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["config"]["backbone"]["z_channels"] = 16
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="shape mismatches"):
        from_pretrained(tmp_path)


def test_missing_directory_contents_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        from_pretrained(tmp_path)
