"""PatchGAN discriminator, GAN objectives and the gradient-balanced adaptive weight.

These follow the taming-transformers / LDM autoencoder recipe: a pix2pix-style PatchGAN with
BatchNorm and N(0, 0.02) initialisation, the hinge objective, a discriminator that is switched
on at a given step, and a weight that rescales an auxiliary loss so that its gradient on one
chosen layer has the same norm as the reconstruction loss's gradient there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def init_discriminator_weights(module: nn.Module) -> None:
    """Initialise one layer as taming does: conv weights N(0, 0.02), BatchNorm N(1, 0.02) / 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (pix2pix / taming ``NLayerDiscriminator``) giving a logit map.

    ``n_layers`` stride-2 4x4 convolutions (the first without normalisation), then one stride-1
    conv with BatchNorm and a final stride-1 conv to one channel. Channels double per layer from
    ``base_channels`` up to 8x. ``in_channels`` is 3 for images and 9 for FA-VAE's detail bands.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        if in_channels < 1 or base_channels < 1 or n_layers < 1:
            raise ValueError(
                "in_channels, base_channels and n_layers must be positive, got "
                f"{in_channels}, {base_channels}, {n_layers}"
            )
        self.in_channels = in_channels
        self.n_layers = n_layers
        # n stride-2 convs halve the size; the two stride-1 4x4 convs then need 3 pixels left
        self.min_size = 3 * 2**n_layers
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                # bias is redundant before BatchNorm's affine shift
                nn.Conv2d(
                    base_channels * prev,
                    base_channels * mult,
                    kernel_size=4,
                    stride=stride,
                    padding=1,
                    bias=False,
                ),
                nn.BatchNorm2d(base_channels * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(base_channels * mult, 1, kernel_size=4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.apply(init_discriminator_weights)

    def forward(self, x: Tensor) -> Tensor:
        """Return the N x 1 x h x w map of real/fake logits for N x in_channels x H x W input."""
        check_discriminator_input(x, self.in_channels, self.n_layers)
        return self.main(x)


def check_discriminator_input(x: Tensor, in_channels: int, n_layers: int) -> None:
    """Raise ValueError unless ``x`` is N x in_channels x H x W and large enough for a PatchGAN
    with ``n_layers`` stride-2 convs and two stride-1 4x4 convs (3 * 2**n_layers pixels)."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"discriminator expects N x {in_channels} x H x W, got {tuple(x.shape)}")
    min_size = 3 * 2**n_layers
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"a {n_layers}-layer PatchGAN needs inputs of at least "
            f"{min_size} x {min_size} pixels, got {tuple(x.shape[-2:])}"
        )


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Hinge discriminator loss 0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x_hat)))."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def vanilla_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Non-saturating (softplus) discriminator loss 0.5 * (softplus(-D(x)) + softplus(D(x_hat)))."""
    return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())


DISCRIMINATOR_LOSSES = {"hinge": hinge_d_loss, "vanilla": vanilla_d_loss}


def adversarial_loss(logits_fake: Tensor) -> Tensor:
    """The autoencoder's adversarial term of the hinge / vanilla GAN as in LDM: -mean D(x_hat).

    (Logged as ``g_loss``, taming-transformers' and LDM's name for it.)
    """
    return -logits_fake.mean()


def adaptive_weight(
    reference_loss: Tensor,
    other_loss: Tensor,
    layer_weight: Tensor,
    *,
    scale: float,
    max_ratio: float,
) -> Tensor:
    """Weight that balances ``other_loss`` against ``reference_loss`` on one layer's weight.

    Returns ``scale * clamp(||d ref / d W|| / (||d other / d W|| + 1e-4), 0, max_ratio)``,
    detached. As upstream (taming / LDM / LightningDiT), the ratio is clamped before it is
    multiplied by ``scale``. Without a graph (evaluation under ``torch.no_grad``) it is 0.
    """
    if not (torch.is_grad_enabled() and reference_loss.requires_grad and other_loss.requires_grad):
        return torch.zeros((), device=reference_loss.device)
    ref_grad = torch.autograd.grad(reference_loss, layer_weight, retain_graph=True)[0]
    other_grad = torch.autograd.grad(other_loss, layer_weight, retain_graph=True)[0]
    ratio = ref_grad.norm() / (other_grad.norm() + 1e-4)
    return ratio.clamp(0.0, max_ratio).detach() * scale
