"""The wavelet MS-VQ-VAE's loss against a direct computation of the author's formulas
(HY-Wong/VAR models/loss.py), its discriminator's shape, the GAN switch and the factory."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.losses import (
    AutoencoderLossConfig,
    WaveletVQDiscriminator,
    WaveletVQLoss,
    WaveletVQLossConfig,
    create_tokenizer_loss,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_tokenizer("ms-vq-vae-wav-tiny")


def _images(count=2, seed=1):
    return torch.rand(count, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _loss(model, perceptual=None, **fields):
    torch.manual_seed(2)
    config = WaveletVQLossConfig(**fields)
    return create_tokenizer_loss(model, perceptual=perceptual, config=config)


def _authors_reconstruction(kind, a, b):
    if kind == "l1":
        return nn.L1Loss()(a, b)
    if kind == "l2":
        return nn.MSELoss()(a, b)
    diff = (a - b) ** 2  # focal_freq_loss with alpha 1
    return (torch.clamp(diff.detach().sqrt(), 0.0, 1.0) * diff).mean()


def _authors_rec_loss(kind, out):
    parts = out.components
    pairs = [
        (parts.target.level1, parts.recon.level1),
        (parts.target.level2, parts.recon.level2),
        (parts.target.low, parts.recon.low),
        (parts.embedding, parts.recon_embedding),
    ]
    total = _authors_reconstruction(kind, *pairs[0])
    for a, b in pairs[1:]:
        total = total + _authors_reconstruction(kind, a, b)
    return total


@pytest.mark.parametrize("kind", ["l1", "l2", "focal"])
def test_reconstruction_is_the_sum_over_components_and_embedding(model, kind):
    loss = _loss(model, reconstruction=kind, perceptual_weight=0.0, disc_start=10)
    x = _images()
    with torch.no_grad():
        out = model(x)
        terms = loss.autoencoder_step(model, x, out, step=0)
    expected = _authors_rec_loss(kind, out)
    torch.testing.assert_close(terms["rec_loss"], expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(terms["loss"], expected + out.vq_loss, rtol=1e-6, atol=0)
    assert "g_loss" not in terms and float(terms["disc_factor"]) == 0.0


def test_the_embedding_term_trains_both_level1_convs_and_the_decoder(model):
    loss = _loss(model, perceptual_weight=0.0, disc_start=10)
    model.zero_grad()
    terms = loss.autoencoder_step(model, _images(), model(_images()), step=0)
    assert terms["rec_embedding"] > 0
    terms["loss"].backward()
    for weight in (model.front_end.down.weight, model.front_end.up.weight):
        assert weight.grad is not None and weight.grad.abs().sum() > 0
    model.zero_grad()


@pytest.mark.parametrize("disc_loss", ["hinge", "cross_entropy"])
def test_full_loss_with_the_gan_on_is_the_authors(model, disc_loss, perceptual_stand_in):
    loss = _loss(
        model, perceptual_stand_in, disc_loss=disc_loss, disc_start=3, reconstruction="focal"
    ).eval()
    x = _images()
    out = model(x)
    terms = loss.autoencoder_step(model, x, out, step=3)
    rec = _authors_rec_loss("focal", out)
    perceptual = perceptual_stand_in(x, out.recon).mean()
    logits_fake = loss.discriminator(out.recon)
    if disc_loss == "hinge":
        g_loss = -torch.mean(logits_fake)
    else:
        g_loss = F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))
    last = model.decoder.conv_out.weight
    rec_grad = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
    d_weight = torch.clamp(rec_grad.norm() / (g_grad.norm() + 1e-4), 0.0, 1e4)
    expected = rec + 1.0 * out.vq_loss + 0.5 * perceptual + d_weight * 1.0 * g_loss
    torch.testing.assert_close(terms["d_weight"], d_weight, rtol=1e-5, atol=0)
    torch.testing.assert_close(terms["g_loss"], g_loss.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(terms["loss"], expected, rtol=1e-6, atol=0)

    d_terms = loss.discriminator_step(x, out, step=3)
    real, fake = loss.discriminator(x), loss.discriminator(out.recon.detach())
    if disc_loss == "hinge":
        d_expected = 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
    else:
        d_expected = 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        )
    torch.testing.assert_close(d_terms["loss"], d_expected, rtol=1e-6, atol=1e-7)


def test_gan_terms_start_at_disc_start(model):
    loss = _loss(model, perceptual_weight=0.0, disc_start=5)
    x = _images()
    out = model(x)
    assert not loss.discriminator_active(4) and loss.discriminator_active(5)
    assert "g_loss" not in loss.autoencoder_step(model, x, out, step=4)
    assert float(loss.discriminator_step(x, out, step=4)["disc_loss"]) == 0.0
    assert "g_loss" in loss.autoencoder_step(model, x, out, step=5)
    assert float(loss.discriminator_step(x, out, step=5)["disc_loss"]) > 0.0


def test_discriminator_is_the_authors_patchgan():
    # HY-Wong/VAR models/discriminator.py DiscriminatorHL(3, 64, 3) and DiscriminatorCEL(3, 64, 3),
    # counted on the author's modules; the stride-1 layer keeps 256 channels
    patch = WaveletVQDiscriminator(3, 64, 3)
    widths = [m.out_channels for m in patch.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 128, 256, 256, 1]
    assert sum(p.numel() for p in patch.parameters()) == 1_712_449
    with torch.device("meta"):
        classifier = WaveletVQDiscriminator(3, 64, 3, head="classifier", image_size=256)
    assert sum(p.numel() for p in classifier.parameters()) == 64_688_961
    assert patch(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    small = WaveletVQDiscriminator(3, 16, 3, head="classifier", image_size=64)
    assert small(torch.zeros(2, 3, 64, 64)).shape == (2, 1)
    with pytest.raises(ValueError, match="classifier head needs the image size"):
        WaveletVQDiscriminator(head="classifier")
    with pytest.raises(ValueError, match="takes 64 x 64 images"):
        small(torch.zeros(2, 3, 128, 128))


def test_factory_builds_it_with_the_authors_defaults(model, perceptual_stand_in):
    loss = create_tokenizer_loss(model, perceptual=perceptual_stand_in)
    assert isinstance(loss, WaveletVQLoss)
    config = loss.config
    assert (config.reconstruction, config.disc_loss) == ("l1", "hinge")
    assert (config.codebook_weight, config.perceptual_weight, config.disc_weight) == (1.0, 0.5, 1.0)
    assert config.image_size == 64 and loss.autoencoder_parameters() == []
    assert not any(k.startswith("perceptual") for k in loss.trainable_state_dict())
    with pytest.raises(ValueError, match="needs a WaveletVQLossConfig"):
        create_tokenizer_loss(model, perceptual=None, config=AutoencoderLossConfig())
    with pytest.raises(ValueError, match="without the VF loss"):
        create_tokenizer_loss(model, perceptual=None, use_vf=True, foundation=nn.Identity())
    with pytest.raises(ValueError, match="needs a perceptual module"):
        create_tokenizer_loss(model, perceptual=None)
    with pytest.raises(ValueError, match="reconstruction must be one of"):
        WaveletVQLossConfig(reconstruction="l3")
