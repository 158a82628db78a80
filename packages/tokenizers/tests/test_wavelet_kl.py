"""The wavelet KL-VAE (kl-vae-wav-f16d16): the author's shape, the tokenizer interface, its
loss, saving, and a round trip of a photograph that improves when trained."""

import pytest
import torch
from skimage import data

from freqlat.tokenizers import (
    WaveletAutoencoderKL,
    create_tokenizer,
    from_pretrained,
    preset_config,
)
from freqlat.tokenizers.losses import AutoencoderLoss, AutoencoderLossConfig, create_tokenizer_loss

# HY-Wong/latent-diffusion autoencoder_wav.py AutoencoderKL with autoencoder_kl-wav_16x16x16.yaml
# (its DownsampleWav/UpsampleWav and CompVis' Encoder/Decoder) has 60,877,243 parameters.
AUTHOR_PARAMETERS = 60_877_243


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_tokenizer("kl-vae-wav-f16d16-tiny").eval()


def _photo(size=64):
    """A size x size crop of scikit-image's astronaut photograph in [-1, 1]."""
    image = torch.from_numpy(data.astronaut()[100 : 100 + 4 * size : 4, 150 : 150 + 4 * size : 4])
    return (image.permute(2, 0, 1).float() / 127.5 - 1).unsqueeze(0)


def test_preset_is_the_authors_model():
    with torch.device("meta"):
        model = create_tokenizer("kl-vae-wav-f16d16")
    assert sum(p.numel() for p in model.parameters()) == AUTHOR_PARAMETERS
    config = model.config
    assert config.front_end.layout == "ldm" and config.backbone.in_channels == 48
    assert (config.backbone.ch, config.backbone.ch_mult, config.backbone.z_channels) == (
        128,
        (1, 2, 4),
        16,
    )
    assert model.downsample == 16 and model.latent_shape(256) == (16, 16, 16)
    assert model.image_channels == 3 and model.latent_channels == 16


def test_tokenizer_interface(tiny):
    x = _photo(32).repeat(2, 1, 1, 1)
    with torch.no_grad():
        out = tiny(x, sample=False)
        posterior = tiny.encode(x)
        assert posterior.mean.shape == (2, 16, 2, 2)
        torch.testing.assert_close(tiny.decode(posterior.mode()), out.recon, rtol=0, atol=0)
    assert out.recon.shape == x.shape and out.posterior is not None
    assert tiny.decoder_last_weight is tiny.decoder.conv_out.weight
    assert tiny.decoder_last_weight.shape[0] == 48  # the decoder's output, before the front end
    assert tiny.encoder_last_weight is tiny.encoder.conv_out.weight
    assert tiny.latent_groups() == {"all": (0, 16)}


def test_bad_shapes_are_clear_errors(tiny):
    with pytest.raises(ValueError, match="not a positive multiple of the model's downsampling"):
        tiny.encode(torch.zeros(1, 3, 24, 24))
    with pytest.raises(ValueError, match=r"N x 3 x H x W"):
        tiny.encode(torch.zeros(1, 48, 32, 32))
    with pytest.raises(ValueError, match="coefficient channels, got in_channels=3"):
        WaveletAutoencoderKL(preset_config("kl-vae-wav-f16d16-tiny", in_channels=3))


def test_loss_is_lpips_with_discriminator_on_the_recomposed_image(tiny):
    loss = create_tokenizer_loss(
        tiny, perceptual=None, config=AutoencoderLossConfig(perceptual_weight=0.0, disc_start=0)
    )
    assert isinstance(loss, AutoencoderLoss) and loss.config.objective == "kl"
    assert loss.config.disc_in_channels == 3
    x = _photo(32)
    terms = loss.autoencoder_step(tiny, x, tiny(x), step=1)
    assert {"nll_loss", "kl_loss", "g_loss"} <= set(terms)


def test_save_and_load_round_trip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, WaveletAutoencoderKL) and loaded.config == tiny.config
    x = _photo(32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, sample=False).recon, tiny(x, sample=False).recon)


def test_a_photograph_round_trips_better_after_a_few_steps():
    torch.manual_seed(0)
    model = create_tokenizer("kl-vae-wav-f16d16-tiny")
    photo = _photo(64)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    def error():
        with torch.no_grad():
            return (model.eval()(photo, sample=False).recon - photo).square().mean().item()

    before = error()
    model.train()
    for _ in range(30):
        out = model(photo, sample=False)
        loss = (out.recon - photo).abs().mean() + 1e-6 * out.posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert error() < 0.5 * before
