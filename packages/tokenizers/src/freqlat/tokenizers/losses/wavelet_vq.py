"""The training loss of the wavelet MS-VQ-VAE, as the FA-VAE author computes it.

HY-Wong/VAR ``models/loss.py`` (``Loss``) driven by ``trainer_wav.py``, with the defaults of
``utils/arg_util.py``. Autoencoder step:

- reconstruction = the sum of four means of ``reconstruction`` ("l1", "l2", or "focal": the
  squared error weighted by the detached absolute error clamped to [0, 1]), one on each
  normalised component (level-1 details / 2, level-2 details / 4, LL2 / 4; the level-1 details
  after the decoder's transposed conv) and one on the 36-channel level-1 embedding, encoder side
  against decoder side (both carry gradients);
- + ``codebook_weight`` (1.0) x the quantiser's VQ loss;
- + ``perceptual_weight`` (0.5) x the batch mean of LPIPS(image, recomposed image);
- + ``d_weight`` x GAN factor x the adversarial term, from ``disc_start``: hinge ``-mean D(x_hat)``
  or cross-entropy ``BCE(D(x_hat), 1)``; ``d_weight = disc_weight (1.0) x clamp(||grad rec|| /
  (||grad adv|| + 1e-4), 0, 1e4)``, detached, the gradients taken on the decoder's last conv
  (48 channels) and the reference being the reconstruction sum alone (no LPIPS).

Discriminator step: the hinge loss, or the mean of the two binary cross-entropies, on detached
images and reconstructions; 0 before ``disc_start``. The discriminator is the author's
(:class:`WaveletVQDiscriminator`): with ``disc_loss="cross_entropy"`` (the README's training
command) it ends in a classifier head over the whole image.

When the GAN starts: the author turns it on at epoch ``max(10, round(0.2 * epochs))`` and
compares ``disc_start_ep * steps_per_epoch`` with Lightning's ``global_step // 2 + 1``, i.e. the
1-based iteration; here ``disc_start`` is the 0-based step, so the author's iteration
``disc_start_ep * steps_per_epoch`` is ``disc_start = disc_start_ep * steps_per_epoch - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freqlat.tokenizers.haar_front_end import HaarBands
from freqlat.tokenizers.losses.autoencoder import TrainableStateMixin
from freqlat.tokenizers.losses.gan import adaptive_weight, hinge_d_loss, vanilla_d_loss
from freqlat.tokenizers.losses.wavelet_vq_discriminator import WaveletVQDiscriminator
from freqlat.tokenizers.wavelet_vq import WaveletComponents, WaveletVQOutput

RECONSTRUCTIONS = ("l1", "l2", "focal")
DISCRIMINATOR_LOSSES = ("hinge", "cross_entropy")

# The README's training command (2 GPUs x 64 images, 150 epochs of ImageNet's 1,281,167 training
# images with drop_last: 10,009 iterations per epoch) turns the GAN on at epoch 30.
README_DISC_START = 30 * 10_009 - 1


@dataclass
class WaveletVQLossConfig:
    """Every knob of :class:`WaveletVQLoss`; defaults are the author's (``utils/arg_util.py``).

    ``reconstruction``: "l1" (``--rec_loss_fn`` default), "l2" or "focal" (the README's command).
    ``disc_loss``: "hinge" (default) or "cross_entropy" (the README's command; needs
    ``image_size`` for its classifier head). ``disc_start``: first 0-based step with the GAN on.
    ``disc_factor`` multiplies both GAN terms once on (the author's is 1).
    """

    reconstruction: str = "l1"
    codebook_weight: float = 1.0
    perceptual_weight: float = 0.5
    disc_weight: float = 1.0
    disc_loss: str = "hinge"
    disc_in_channels: int = 3
    disc_base_channels: int = 64
    disc_layers: int = 3
    image_size: int | None = None
    disc_start: int = README_DISC_START
    disc_factor: float = 1.0
    adaptive_weight_max: float = 1e4

    def __post_init__(self) -> None:
        if self.reconstruction not in RECONSTRUCTIONS:
            raise ValueError(
                f"reconstruction must be one of {RECONSTRUCTIONS}, got {self.reconstruction!r}"
            )
        if self.disc_loss not in DISCRIMINATOR_LOSSES:
            raise ValueError(
                f"disc_loss must be one of {DISCRIMINATOR_LOSSES}, got {self.disc_loss!r}"
            )
        for name in ("codebook_weight", "perceptual_weight", "disc_weight", "disc_factor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.adaptive_weight_max <= 0:
            raise ValueError(f"adaptive_weight_max must be > 0, got {self.adaptive_weight_max}")


def focal_reconstruction_loss(target: Tensor, recon: Tensor) -> Tensor:
    """Mean of w * (target - recon)^2 with w = |target - recon| detached and clamped to [0, 1]
    (HY-Wong/VAR ``models/loss.py`` ``focal_freq_loss`` with its default alpha 1)."""
    diff = target - recon
    return (diff.detach().abs().clamp(0.0, 1.0) * diff.square()).mean()


def _reconstruction_fn(name: str):
    if name == "l1":
        return F.l1_loss
    if name == "l2":
        return F.mse_loss
    return focal_reconstruction_loss


class WaveletVQLoss(TrainableStateMixin, nn.Module):
    """The wavelet MS-VQ-VAE's loss with separate autoencoder and discriminator steps.

    ``perceptual`` maps two N x 3 x H x W images in [-1, 1] to per-image distances (normally
    ``freqlat.metrics.LPIPS``); it may be None when ``perceptual_weight`` is 0. The loss trains
    only its discriminator (:meth:`discriminator_parameters`); the autoencoder step also leaves
    gradients on it, so zero them before its step.
    """

    def __init__(
        self, config: WaveletVQLossConfig | None = None, perceptual: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.config = config = config or WaveletVQLossConfig()
        if config.perceptual_weight > 0 and perceptual is None:
            raise ValueError(
                "perceptual_weight > 0 needs a perceptual module (e.g. freqlat.metrics.LPIPS)"
            )
        self.perceptual = perceptual if config.perceptual_weight > 0 else None
        if self.perceptual is not None:
            self.perceptual.requires_grad_(False).eval()
        classifier = config.disc_loss == "cross_entropy"
        self.discriminator = WaveletVQDiscriminator(
            config.disc_in_channels,
            config.disc_base_channels,
            config.disc_layers,
            head="classifier" if classifier else "patch",
            image_size=config.image_size if classifier else None,
        )
        self._reconstruction = _reconstruction_fn(config.reconstruction)

    def train(self, mode: bool = True) -> WaveletVQLoss:
        """Switch train/eval mode; the frozen perceptual network always stays in eval mode."""
        super().train(mode)
        if self.perceptual is not None:
            self.perceptual.eval()
        return self

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the loss trained with the autoencoder: none."""
        return []

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by the discriminator optimiser."""
        return list(self.discriminator.parameters())

    def disc_factor_at(self, step: int) -> float:
        """GAN factor at ``step``: ``disc_factor`` from ``disc_start`` on, 0 before."""
        return self.config.disc_factor if step >= self.config.disc_start else 0.0

    def discriminator_active(self, step: int) -> bool:
        """Whether the GAN terms are on at ``step`` (a loop may skip the discriminator step)."""
        return self.disc_factor_at(step) > 0 and self.config.disc_weight > 0

    def reconstruction_terms(self, components: WaveletComponents) -> dict[str, Tensor]:
        """The four reconstruction terms: each normalised component and the embedding."""
        target: HaarBands = components.target
        recon: HaarBands = components.recon
        pairs = {
            "rec_level1": (target.level1, recon.level1),
            "rec_level2": (target.level2, recon.level2),
            "rec_low": (target.low, recon.low),
            "rec_embedding": (components.embedding, components.recon_embedding),
        }
        return {name: self._reconstruction(a.float(), b.float()) for name, (a, b) in pairs.items()}

    def _adversarial(self, logits_fake: Tensor) -> Tensor:
        if self.config.disc_loss == "hinge":
            return -logits_fake.mean()
        return F.softplus(-logits_fake).mean()  # BCE with label 1

    def _discriminator_loss(self, logits_real: Tensor, logits_fake: Tensor) -> Tensor:
        if self.config.disc_loss == "hinge":
            return hinge_d_loss(logits_real, logits_fake)
        return vanilla_d_loss(logits_real, logits_fake)  # the mean of the two BCEs

    def autoencoder_loss(
        self,
        images: Tensor,
        output: WaveletVQOutput,
        *,
        step: int,
        decoder_last_weight: Tensor,
    ) -> dict[str, Tensor]:
        """Autoencoder-step loss: ``"loss"`` (to backpropagate) and detached terms for logging."""
        cfg = self.config
        if output.components is None or output.vq_loss is None:
            raise ValueError("the wavelet VQ loss needs a WaveletVQOutput with its components")
        if images.shape != output.recon.shape:
            raise ValueError(
                f"images and recon shapes differ: {tuple(images.shape)} vs "
                f"{tuple(output.recon.shape)}"
            )
        parts = self.reconstruction_terms(output.components)
        rec_loss = sum(parts.values())
        vq_loss = output.vq_loss.float().mean()
        loss = rec_loss + cfg.codebook_weight * vq_loss
        terms: dict[str, Tensor] = {k: v.detach() for k, v in parts.items()}
        terms["rec_loss"] = rec_loss.detach()
        terms["vq_loss"] = vq_loss.detach()
        if self.perceptual is not None:
            perceptual = self.perceptual(images.contiguous(), output.recon.contiguous())
            perceptual = perceptual.float().mean()
            loss = loss + cfg.perceptual_weight * perceptual
            terms["perceptual_loss"] = perceptual.detach()
        disc_factor = self.disc_factor_at(step)
        if disc_factor > 0 and cfg.disc_weight > 0:
            g_loss = self._adversarial(self.discriminator(output.recon.contiguous()).float())
            d_weight = adaptive_weight(
                rec_loss,
                g_loss,
                decoder_last_weight,
                scale=cfg.disc_weight,
                max_ratio=cfg.adaptive_weight_max,
            )
            loss = loss + d_weight * disc_factor * g_loss
            terms["g_loss"] = g_loss.detach()
            terms["d_weight"] = d_weight
        terms["disc_factor"] = torch.tensor(disc_factor)
        terms["loss"] = loss
        return terms

    def discriminator_loss(self, images: Tensor, recon: Tensor, *, step: int) -> dict[str, Tensor]:
        """Discriminator-step loss on detached images and reconstructions."""
        logits_real = self.discriminator(images.contiguous().detach()).float()
        logits_fake = self.discriminator(recon.contiguous().detach()).float()
        d_loss = self.disc_factor_at(step) * self._discriminator_loss(logits_real, logits_fake)
        return {
            "loss": d_loss,
            "disc_loss": d_loss.detach(),
            "logits_real": logits_real.detach().mean(),
            "logits_fake": logits_fake.detach().mean(),
        }

    def autoencoder_step(
        self, model: Any, images: Tensor, output: WaveletVQOutput, step: int
    ) -> dict[str, Tensor]:
        """:meth:`autoencoder_loss` for the model's forward output (``model`` gives the
        decoder's last conv weight)."""
        return self.autoencoder_loss(
            images, output, step=step, decoder_last_weight=model.decoder_last_weight
        )

    def discriminator_step(
        self, images: Tensor, output: WaveletVQOutput, step: int
    ) -> dict[str, Tensor]:
        """:meth:`discriminator_loss` for the model's forward output."""
        return self.discriminator_loss(images, output.recon, step=step)
