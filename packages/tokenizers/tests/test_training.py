"""Ten training steps of every -tiny tokenizer on real photographs lower its reconstruction error.

The full two-optimiser recipe runs: autoencoder step (NLL/VQ, KL, perceptual, VF where the
preset uses it, GAN from step 5 with its adaptive weight), then the discriminator step. The
perceptual network and the foundation ViT are small and random (no weights can be downloaded).
"""

import pytest
import torch
import torch.nn.functional as F
from skimage import data

from freqlat.metrics import LPIPS
from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.losses import (
    AutoencoderLossConfig,
    FrequencyAwareLossConfig,
    create_tokenizer_loss,
)

STEPS = 10
DISC_START = 5


def _photographs(size):
    crops = []
    for image in (data.astronaut(), data.coffee(), data.chelsea()):
        t = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0
        side = min(t.shape[1:])
        top, left = (t.shape[1] - side) // 2, (t.shape[2] - side) // 2
        square = t[None, :, top : top + side, left : left + side]
        crops.append(F.interpolate(square, size=(size, size), mode="area"))
    return torch.cat(crops)


def _reconstruction_error(model, images):
    model.eval()
    with torch.no_grad():
        error = F.mse_loss(model(images, sample=False).recon, images)
    model.train()
    return float(error)


@pytest.mark.parametrize(
    ("preset", "size"),
    [
        ("kl-vae-f16d16-tiny", 32),
        ("va-vae-f16d32-tiny", 32),
        ("ms-vq-vae-tiny", 64),
        ("fa-vae-f16d64-tiny", 32),
        ("fa-vae-f16d32-tiny", 32),
    ],
)
def test_ten_training_steps_lower_reconstruction_error(preset, size, tiny_foundation):
    torch.manual_seed(0)
    images = _photographs(size)
    model = create_tokenizer(preset)
    small_disc = {"disc_start": DISC_START, "disc_base_channels": 16}
    if preset.startswith("fa-vae"):
        config = FrequencyAwareLossConfig(
            low=AutoencoderLossConfig(perceptual_weight=1.0, **small_disc),
            # the 16 px detail bands are too small for a 3-layer PatchGAN (24 px minimum)
            high=AutoencoderLossConfig(
                perceptual_weight=0.0, disc_in_channels=9, disc_layers=2, **small_disc
            ),
            band_weight=0.1,
            mask_weight=0.1,
        )
    else:
        config = AutoencoderLossConfig(**small_disc)
    loss = create_tokenizer_loss(
        model,
        perceptual=LPIPS("squeeze", pretrained=False, check_range=False),
        foundation=tiny_foundation(),
        config=config,
    )
    ae_params = list(model.parameters()) + loss.autoencoder_parameters()
    ae_opt = torch.optim.Adam(ae_params, lr=2e-3, betas=(0.5, 0.9))
    disc_opt = torch.optim.Adam(loss.discriminator_parameters(), lr=2e-3, betas=(0.5, 0.9))

    before = _reconstruction_error(model, images)
    for step in range(STEPS):
        output = model(images)
        terms = loss.autoencoder_step(model, images, output, step)
        ae_opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        ae_opt.step()
        if loss.discriminator_active(step):
            disc_terms = loss.discriminator_step(images, output, step)
            disc_opt.zero_grad(set_to_none=True)
            disc_terms["loss"].backward()
            disc_opt.step()
            assert torch.isfinite(disc_terms["loss"])
        assert all(torch.isfinite(v).all() for v in terms.values())
    after = _reconstruction_error(model, images)
    assert after < before
    if preset.startswith(("va-vae", "fa-vae")):
        assert any(k.endswith("vf_loss") for k in terms)
    assert any(k.endswith("g_loss") for k in terms)
