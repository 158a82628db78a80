"""Registry, presets, latent shapes and input validation."""

import pytest
import torch

from freqlat.tokenizers import create_tokenizer, list_tokenizers, preset_config

PAPER_LATENTS = {
    "kl-vae-f16d16": (16, 16, 16),
    "ms-vq-vae": (32, 16, 16),
    "va-vae-f16d32": (32, 16, 16),
    "fa-vae-f16d64": (64, 16, 16),
    "fa-vae-f16d32": (32, 16, 16),
}


def test_registry_lists_every_paper_preset_and_its_tiny_variant():
    names = list_tokenizers()
    for name in PAPER_LATENTS:
        assert name in names and f"{name}-tiny" in names


@pytest.mark.parametrize("name", sorted(PAPER_LATENTS))
def test_paper_preset_latent_shape_at_256(name):
    with torch.device("meta"):
        model = create_tokenizer(name)
    assert model.latent_shape(256) == PAPER_LATENTS[name]
    assert model.downsample == 16


@pytest.mark.parametrize("name", sorted(PAPER_LATENTS))
def test_paper_preset_forward_shapes_on_meta(name):
    with torch.device("meta"):
        model = create_tokenizer(name)
        if name.startswith("fa-vae"):
            # The branches on their own inputs (the Haar transform itself is tested on CPU).
            high = model.high.encode(torch.empty(1, 9, 128, 128)).mode()
            low = model.low.encode(torch.empty(1, 3, 256, 256)).mode()
            latent = torch.cat([high, low], dim=1)
            recon = model.low.decode(low)
        elif name.startswith("ms-vq-vae"):
            # The quantiser reads code indices, which a meta tensor does not have.
            latent = model.quant_conv(model.encoder(torch.empty(1, 3, 256, 256)))
            recon = model.decode(latent)
        else:
            posterior = model.encode(torch.empty(1, 3, 256, 256))
            latent = posterior.mode()
            recon = model.decode(latent)
    assert tuple(latent.shape[1:]) == PAPER_LATENTS[name]
    assert tuple(recon.shape) == (1, 3, 256, 256)


def test_published_architecture_facts():
    var = preset_config("ms-vq-vae")
    assert var.backbone.ch == 160 and var.vocab_size == 4096 and var.backbone.z_channels == 32
    assert var.patch_sizes == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    mar = preset_config("kl-vae-f16d16").backbone
    assert mar.decoder_attn_resolutions == () and mar.encoder_attn_resolutions == (16,)
    fa = preset_config("fa-vae-f16d64")
    assert fa.high.backbone.in_channels == 9 and fa.high.backbone.ch_mult == (1, 2, 2, 4)
    assert fa.band_scale == 2.0
    budget = preset_config("fa-vae-f16d32")
    assert (budget.low.backbone.z_channels, budget.high.backbone.z_channels) == (24, 8)


def test_paper_parameter_counts():
    # VAR's released VQ-VAE has 108.9M parameters; MAR KL-16 and VA-VAE are LDM f16 AEs.
    with torch.device("meta"):
        counts = {
            n: sum(p.numel() for p in create_tokenizer(n).parameters()) for n in PAPER_LATENTS
        }
    assert counts["ms-vq-vae"] == 108_948_355
    assert counts["kl-vae-f16d16"] == 66_456_019
    assert counts["va-vae-f16d32"] == 69_836_067


def test_overrides_reach_model_and_backbone_fields():
    model = create_tokenizer("ms-vq-vae-tiny", vocab_size=32, z_channels=8)
    assert model.quantize.embedding.weight.shape == (32, 8)
    fa = create_tokenizer("fa-vae-f16d32-tiny", low={"z_channels": 16}, high={"z_channels": 16})
    assert fa.latent_channels == 32 and fa.latent_groups() == {"high": (0, 16), "low": (16, 32)}


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="kl-vae-f16d16"):
        create_tokenizer("no-such-vae")


def test_unknown_override_names_the_valid_keys():
    with pytest.raises(ValueError, match=r"valid keys.*ch_mult"):
        create_tokenizer("va-vae-f16d32-tiny", channels=3)


def test_wrong_channel_count_is_rejected(tiny_models):
    model = tiny_models["va-vae-f16d32-tiny"]
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model.encode(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match="N x 32 x h x w"):
        model.decode(torch.zeros(1, 16, 2, 2))


@pytest.mark.parametrize("name", ["va-vae-f16d32-tiny", "fa-vae-f16d64-tiny", "ms-vq-vae-tiny"])
def test_indivisible_image_size_is_rejected(tiny_models, name):
    with pytest.raises(ValueError, match=r"image size|takes"):
        tiny_models[name].encode(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError):
        tiny_models[name].latent_shape(24)
