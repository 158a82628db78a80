"""LDM autoencoder loss: NLL/KL formula, VQ objective, hinge GAN, PatchGAN, adaptive weight."""

import pytest
import torch
from torch import nn

from freqlat.tokenizers.losses import (
    AutoencoderLoss,
    AutoencoderLossConfig,
    NLayerDiscriminator,
    adaptive_weight,
    hinge_d_loss,
    vanilla_d_loss,
)
from freqlat.tokenizers.types import DiagonalGaussian


class MeanSquarePerceptual(nn.Module):
    """Stand-in perceptual distance with a closed form: per-image mean squared difference."""

    def forward(self, x, y):
        return (x - y).pow(2).mean(dim=(1, 2, 3))


class ToyAutoencoder(nn.Module):
    """Patchify encoder + unpatchify decoder: the smallest model with real last layers."""

    def __init__(self, channels=3, latent=4, patch=8):
        super().__init__()
        self.enc = nn.Conv2d(channels, 2 * latent, patch, stride=patch)
        self.dec = nn.ConvTranspose2d(latent, channels, patch, stride=patch)

    @property
    def encoder_last_weight(self):
        return self.enc.weight

    @property
    def decoder_last_weight(self):
        return self.dec.weight

    def run(self, x):
        posterior = DiagonalGaussian.from_moments(self.enc(x))
        latent = posterior.sample()
        return posterior, latent, self.dec(latent)


def _images(n=2, c=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g) * 2 - 1


def test_nll_and_kl_match_the_ldm_formula_with_learned_logvar():
    torch.manual_seed(0)
    x, y = _images(seed=1), _images(seed=2)
    posterior = DiagonalGaussian(torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4))
    loss = AutoencoderLoss(
        AutoencoderLossConfig(perceptual_weight=0.7, disc_start=10), MeanSquarePerceptual()
    )
    weight = torch.zeros(1, requires_grad=True)
    p = (x - y).pow(2).mean(dim=(1, 2, 3)).view(2, 1, 1, 1)
    kl = 0.5 * (posterior.mean**2 + posterior.logvar.exp() - 1 - posterior.logvar)
    for logvar in (0.0, 0.5):
        with torch.no_grad():
            loss.logvar.fill_(logvar)
        terms = loss.autoencoder_loss(x, y, step=0, decoder_last_weight=weight, posterior=posterior)
        rec = (x - y).abs() + 0.7 * p
        nll = (rec / torch.exp(torch.tensor(logvar)) + logvar).sum() / 2
        expected = nll + 1e-6 * kl.sum() / 2
        torch.testing.assert_close(terms["nll_loss"], nll)
        torch.testing.assert_close(terms["kl_loss"], kl.sum() / 2)
        torch.testing.assert_close(terms["loss"], expected)
        assert "g_loss" not in terms and float(terms["disc_factor"]) == 0.0


def test_logvar_starts_at_zero_and_is_an_autoencoder_parameter():
    loss = AutoencoderLoss(AutoencoderLossConfig(perceptual_weight=0.0))
    assert float(loss.logvar.detach()) == 0.0
    assert loss.autoencoder_parameters() == [loss.logvar]
    assert (
        AutoencoderLoss(AutoencoderLossConfig(objective="vq", perceptual_weight=0)).logvar is None
    )


def test_vq_objective_is_mean_reconstruction_plus_codebook_loss():
    x, y = _images(seed=1), _images(seed=2)
    vq_loss = torch.tensor(0.3)
    loss = AutoencoderLoss(
        AutoencoderLossConfig(objective="vq", perceptual_weight=1.0, codebook_weight=2.0),
        MeanSquarePerceptual(),
    )
    terms = loss.autoencoder_loss(x, y, step=0, decoder_last_weight=x, vq_loss=vq_loss)
    p = (x - y).pow(2).mean(dim=(1, 2, 3)).view(2, 1, 1, 1)
    expected = ((x - y).abs() + p).mean() + 2.0 * 0.3
    torch.testing.assert_close(terms["loss"], expected)


def test_l2_pixel_loss_option():
    x, y = _images(seed=1), _images(seed=2)
    loss = AutoencoderLoss(
        AutoencoderLossConfig(objective="vq", pixel_loss="l2", perceptual_weight=0)
    )
    terms = loss.autoencoder_loss(x, y, step=0, decoder_last_weight=x, vq_loss=torch.tensor(0.0))
    torch.testing.assert_close(terms["loss"], (x - y).pow(2).mean())


def test_hinge_and_vanilla_losses_on_known_logits():
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-2.0, 0.5])
    # real: relu(1-2)=0, relu(0.5)=0.5 -> 0.25; fake: relu(1-2)=0, relu(1.5)=1.5 -> 0.75
    torch.testing.assert_close(hinge_d_loss(real, fake), torch.tensor(0.5))
    sp = nn.functional.softplus
    expected = 0.5 * (sp(-real).mean() + sp(fake).mean())
    torch.testing.assert_close(vanilla_d_loss(real, fake), expected)


def test_patchgan_layout_and_initialisation():
    torch.manual_seed(0)
    disc = NLayerDiscriminator(in_channels=9)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in disc.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride for c in convs] == [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    assert len(norms) == 3 and all(float(n.bias.detach().abs().max()) == 0.0 for n in norms)
    assert abs(float(convs[3].weight.detach().std()) - 0.02) < 1e-3
    assert disc(torch.zeros(2, 9, 64, 64)).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="9 x H x W"):
        disc(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 24 x 24"):
        disc(torch.zeros(2, 9, 16, 16))


def test_adaptive_weight_matches_autograd_hand_computation():
    torch.manual_seed(0)
    layer = nn.Linear(5, 5)
    out = layer(torch.randn(3, 5))
    nll, other = out.abs().sum(), (out**3).mean()
    g1 = torch.autograd.grad(nll, layer.weight, retain_graph=True)[0]
    g2 = torch.autograd.grad(other, layer.weight, retain_graph=True)[0]
    expected = 0.5 * g1.norm() / (g2.norm() + 1e-4)
    weight = adaptive_weight(nll, other, layer.weight, scale=0.5, max_ratio=1e4)
    torch.testing.assert_close(weight, expected)
    assert not weight.requires_grad
    # the ratio is clamped before scaling (as upstream)
    capped = adaptive_weight(nll, other * 1e-9, layer.weight, scale=0.5, max_ratio=10.0)
    torch.testing.assert_close(capped, torch.tensor(5.0))


def test_adversarial_term_uses_adaptive_weight_on_decoder_last_layer():
    torch.manual_seed(0)
    model = ToyAutoencoder()
    x = _images()
    cfg = AutoencoderLossConfig(perceptual_weight=0.0, disc_start=3, disc_weight=0.5)
    loss = AutoencoderLoss(cfg)
    posterior, _, recon = model.run(x)
    terms = loss.autoencoder_loss(
        x, recon, step=3, decoder_last_weight=model.decoder_last_weight, posterior=posterior
    )
    nll = (recon - x).abs().sum() / 2
    g_loss = -loss.discriminator(recon).mean()
    w = model.decoder_last_weight
    g_nll = torch.autograd.grad(nll, w, retain_graph=True)[0]
    g_gan = torch.autograd.grad(g_loss, w, retain_graph=True)[0]
    d_weight = 0.5 * (g_nll.norm() / (g_gan.norm() + 1e-4)).clamp(0, 1e4)
    torch.testing.assert_close(terms["d_weight"], d_weight)
    torch.testing.assert_close(terms["g_loss"], g_loss.detach())
    expected = nll + 1e-6 * posterior.kl().sum() / 2 + d_weight * g_loss
    torch.testing.assert_close(terms["loss"], expected)


def test_discriminator_step_is_zero_before_disc_start_and_hinge_after():
    torch.manual_seed(0)
    loss = AutoencoderLoss(AutoencoderLossConfig(perceptual_weight=0.0, disc_start=5))
    x, y = _images(seed=1), _images(seed=2)
    assert not loss.discriminator_active(4) and loss.discriminator_active(5)
    before = loss.discriminator_loss(x, y, step=4)
    assert float(before["disc_loss"]) == 0.0
    after = loss.discriminator_loss(x, y, step=5)
    # train-mode BatchNorm uses batch statistics, so a second pass gives the same logits
    expected = hinge_d_loss(loss.discriminator(x), loss.discriminator(y))
    torch.testing.assert_close(after["loss"], expected)
    after["loss"].backward()
    assert all(p.grad is not None for p in loss.discriminator_parameters())


def test_evaluation_without_grad_gives_zero_adaptive_weight():
    model = ToyAutoencoder()
    loss = AutoencoderLoss(AutoencoderLossConfig(perceptual_weight=0.0, disc_start=0)).eval()
    x = _images()
    with torch.no_grad():
        posterior, _, recon = model.run(x)
        terms = loss.autoencoder_loss(
            x, recon, step=1, decoder_last_weight=model.decoder_last_weight, posterior=posterior
        )
    assert float(terms["d_weight"]) == 0.0


def test_bad_configuration_and_inputs_raise_value_error():
    with pytest.raises(ValueError, match="perceptual module"):
        AutoencoderLoss(AutoencoderLossConfig(perceptual_weight=1.0))
    with pytest.raises(ValueError, match="objective"):
        AutoencoderLossConfig(objective="gan")
    loss = AutoencoderLoss(AutoencoderLossConfig(perceptual_weight=0.0))
    x = _images()
    with pytest.raises(ValueError, match="posterior"):
        loss.autoencoder_loss(x, x, step=0, decoder_last_weight=x)
    with pytest.raises(ValueError, match="3-channel"):
        loss.autoencoder_loss(_images(c=9), _images(c=9), step=0, decoder_last_weight=x)


def test_autoencoder_terms_are_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = ToyAutoencoder()
    loss = AutoencoderLoss(AutoencoderLossConfig(perceptual_weight=0.0, disc_start=0))
    x = _images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        posterior, _, recon = model.run(x)
        terms = loss.autoencoder_loss(
            x, recon, step=0, decoder_last_weight=model.decoder_last_weight, posterior=posterior
        )
        disc = loss.discriminator_loss(x, recon, step=0)
    assert recon.dtype == torch.bfloat16
    for value in (*terms.values(), *disc.values()):
        assert value.dtype == torch.float32 and torch.isfinite(value)
    terms["loss"].backward()
    assert model.enc.weight.grad is not None
