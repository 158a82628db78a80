"""The wavelet MS-VQ-VAE (ms-vq-vae-wav): the author's shapes and initialisation, the path through
the Haar front end, the token contract, saving, and a photograph that round-trips better after
a few steps."""

import pytest
import torch
from skimage import data
from torch import nn

from freqlat.tokenizers import (
    MultiScaleResidualQuantizer,
    WaveletMultiScaleVQVAE,
    WaveletVQOutput,
    create_tokenizer,
    from_pretrained,
    preset_config,
)

# HY-Wong/VAR train_wav.py: build_vae(V=4096, Cvae=256 (arg_util default), ch=160, ch_mult=(1, 2, 4),
# in_channels=48, share_quant_resi=4), counted on the fork's own modules.
AUTHOR_PARAMETERS = {
    "front_end": 2_952 + 2_925,  # downsample_wav + upsample_wav
    "encoder": 39_696_896,
    "decoder": 57_935_888,
    "quantize": 3_408_896,
    "quant_conv": 590_080,
    "post_quant_conv": 590_080,
}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_tokenizer("ms-vq-vae-wav-tiny").eval()


def _photo(size=64):
    """A size x size crop of scikit-image's astronaut photograph in [-1, 1]."""
    image = torch.from_numpy(data.astronaut()[80 : 80 + 4 * size : 4, 140 : 140 + 4 * size : 4])
    return (image.permute(2, 0, 1).float() / 127.5 - 1).unsqueeze(0)


def _images(count=2, size=64, seed=1):
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_preset_is_the_authors_model():
    with torch.device("meta"):
        model = create_tokenizer("ms-vq-vae-wav")
    counts = {
        name: sum(p.numel() for p in module.parameters()) for name, module in model.named_children()
    }
    assert counts == AUTHOR_PARAMETERS
    assert sum(counts.values()) == 102_227_717
    config = model.config
    assert config.front_end.layout == "var" and config.backbone.in_channels == 48
    backbone = config.backbone
    assert (backbone.ch, backbone.ch_mult, backbone.num_res_blocks, backbone.z_channels) == (
        160,
        (1, 2, 4),
        2,
        256,
    )
    # VAR's encoder attends in the last level's blocks: 16 x 16 coefficients at 256 px
    assert len(model.encoder.down[2].attn) == 2 and len(model.encoder.down[1].attn) == 0
    assert len(model.decoder.up[2].attn) == 3 and len(model.decoder.up[1].attn) == 0
    quantize = model.quantize
    assert isinstance(quantize, MultiScaleResidualQuantizer)
    assert (quantize.vocab_size, quantize.channels, len(quantize.phi)) == (4096, 256, 4)
    assert quantize.patch_sizes == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    assert all(phi.ratio == 0.5 for phi in quantize.phi)
    assert model.downsample == 16 and model.image_size == 256
    assert model.latent_shape(256) == (256, 16, 16)


def test_tiny_preset_fits_a_var_tiny_scale_and_vocabulary(tiny):
    assert tiny.quantize.patch_sizes == (1, 2, 3, 4) and tiny.quantize.vocab_size == 256
    assert tiny.image_size == 64 and tiny.latent_shape(64) == (256, 4, 4)


def test_convs_start_as_the_authors_init():
    torch.manual_seed(0)
    model = create_tokenizer("ms-vq-vae-wav-tiny")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) > 40 and all(not m.bias.any() for m in convs)
    weight = model.decoder.conv_in.weight  # 64 x 256 x 3 x 3: Xavier std = gain * sqrt(2 / 2880)
    expected = 0.5 * (2 / (256 * 9 + 64 * 9)) ** 0.5
    assert abs(weight.std().item() / expected - 1) < 0.02
    codebook = model.quantize.embedding.weight
    assert codebook.abs().max() <= 1 / 256
    default = create_tokenizer("ms-vq-vae-wav-tiny", init_gain=0.0)
    assert default.decoder.conv_in.bias.any()  # PyTorch's own init


def test_forward_keeps_the_components_the_loss_compares(tiny):
    x = _images()
    with torch.no_grad():
        out = tiny(x)
    assert isinstance(out, WaveletVQOutput)
    parts = out.components
    assert parts.target.level1.shape == parts.recon.level1.shape == (2, 9, 32, 32)
    assert parts.target.level2.shape == parts.recon.level2.shape == (2, 9, 16, 16)
    assert parts.target.low.shape == parts.recon.low.shape == (2, 3, 16, 16)
    assert parts.embedding.shape == parts.recon_embedding.shape == (2, 36, 16, 16)
    assert out.recon.shape == x.shape and out.latent.shape == (2, 256, 4, 4)
    assert [tuple(i.shape) for i in out.indices] == [(2, p, p) for p in (1, 2, 3, 4)]
    front = tiny.front_end
    torch.testing.assert_close(parts.embedding, front.embed_level1(parts.target.level1))
    torch.testing.assert_close(out.recon, front.merge(parts.recon), rtol=0, atol=0)
    torch.testing.assert_close(tiny.decode(out.latent), out.recon, rtol=0, atol=0)
    assert tiny.decoder_last_weight is tiny.decoder.conv_out.weight
    assert tiny.decoder_last_weight.shape[0] == 48  # the decoder's output, before the front end
    assert tiny.encoder_last_weight is tiny.encoder.conv_out.weight


class _Replay(nn.Module):
    """A decoder stand-in that returns the coefficients it was given to replay."""

    def __init__(self, coefficients):
        super().__init__()
        self.coefficients = coefficients

    def forward(self, z):
        return self.coefficients


def test_the_path_around_the_autoencoder_reconstructs_perfectly():
    torch.manual_seed(0)
    model = create_tokenizer("ms-vq-vae-wav-tiny").eval()
    # the "var" layout's convs set to space-to-depth: each 2 x 2 block of a level-1 channel
    # goes to 4 channels (slot 4 * channel + 2 * row + column) and back
    block = torch.eye(36).view(36, 9, 2, 2)
    with torch.no_grad():
        for conv in (model.front_end.down, model.front_end.up):
            conv.weight.zero_()
            conv.weight[:, :, :2, :2] = block
            conv.bias.zero_()
    x = _images()
    coefficients = model.front_end.encode(x)
    model.decoder = _Replay(coefficients)  # the autoencoder as a perfect one
    with torch.no_grad():
        out = model(x)
        decoded = model.decode(out.latent)
    torch.testing.assert_close(out.recon, x, rtol=0, atol=1e-6)
    torch.testing.assert_close(decoded, x, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.components.recon_embedding, out.components.embedding)


def test_indices_round_trip_to_the_latents_image(tiny):
    x = _images()
    with torch.no_grad():
        indices = tiny.encode_indices(x)
        from_indices = tiny.decode_indices(indices)
        latent = tiny.encode_latent(x, sample=False)
        from_latent = tiny.decode(latent)
        encoded = tiny.encode(x)
    assert all(torch.equal(a, b) for a, b in zip(indices, encoded.indices, strict=True))
    torch.testing.assert_close(latent, tiny.quantize.indices_to_latent(indices), atol=1e-5, rtol=0)
    # the latent is the straight-through sum x + (f_hat - x), equal to f_hat up to rounding
    torch.testing.assert_close(from_indices, from_latent, rtol=1e-4, atol=1e-4)


def test_bad_inputs_are_clear_errors(tiny):
    with pytest.raises(ValueError, match="takes 64x64 images"):
        tiny.encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"N x 3 x H x W"):
        tiny.encode(torch.zeros(1, 48, 64, 64))
    with pytest.raises(ValueError, match="coefficient channels, got in_channels=3"):
        WaveletMultiScaleVQVAE(preset_config("ms-vq-vae-wav-tiny", in_channels=3))
    with pytest.raises(ValueError, match="init_gain must be >= 0"):
        create_tokenizer("ms-vq-vae-wav-tiny", init_gain=-1.0)


def test_save_and_load_round_trip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, WaveletMultiScaleVQVAE) and loaded.config == tiny.config
    x = _images()
    with torch.no_grad():
        assert all(
            torch.equal(a, b)
            for a, b in zip(loaded.encode_indices(x), tiny.encode_indices(x), strict=True)
        )
        torch.testing.assert_close(loaded(x).recon, tiny(x).recon, rtol=0, atol=0)


def test_a_photograph_round_trips_better_after_a_few_steps():
    torch.manual_seed(0)
    model = create_tokenizer("ms-vq-vae-wav-tiny")
    photo = _photo()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def error():
        with torch.no_grad():
            model.eval()
            return (model.decode_indices(model.encode_indices(photo)) - photo).square().mean()

    before = error().item()
    model.train()
    for _ in range(20):
        out = model(photo)
        parts = out.components
        loss = out.vq_loss + sum(
            (a - b).abs().mean()
            for a, b in (
                (parts.target.level1, parts.recon.level1),
                (parts.target.level2, parts.recon.level2),
                (parts.target.low, parts.recon.low),
            )
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert error().item() < 0.5 * before
