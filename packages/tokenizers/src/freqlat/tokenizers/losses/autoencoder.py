"""The LDM autoencoder loss ("LPIPS with discriminator") for KL and VQ tokenizers.

Autoencoder step (one optimiser over the autoencoder, ``logvar`` and the VF projection):

- ``objective="kl"`` (LDM / VA-VAE / FA-VAE branches): per-pixel reconstruction
  r = |x - x_hat| + w_p * LPIPS(x, x_hat) (the per-image LPIPS is broadcast to every pixel),
  NLL = r / exp(logvar) + logvar with a learned scalar ``logvar``, summed over pixels and divided
  by the batch; KL summed and divided by the batch, weight ``kl_weight``.
- ``objective="vq"`` (taming VQGAN style, used for VAR's MS-VQ-VAE, whose training code is not
  public): NLL = mean of r (no ``logvar``), plus ``codebook_weight`` times the model's
  ``vq_loss`` (codebook + 0.25 * commitment MSE; the gradient reaches the encoder through the
  straight-through estimator inside the quantiser).
- Both: hinge GAN with a PatchGAN, its adversarial term scaled by the adaptive weight taken on the
  decoder's last conv weight and by the ``disc_start`` switch; optionally VA-VAE's VF loss with its
  own adaptive weight taken on the encoder's last conv weight.

Discriminator step (a second optimiser over ``discriminator`` only): ``disc_factor`` times the
hinge loss on detached real and reconstructed images, 0 before ``disc_start``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from freqlat.tokenizers.losses.gan import (
    DISCRIMINATOR_LOSSES,
    NLayerDiscriminator,
    adaptive_weight,
    adversarial_loss,
)
from freqlat.tokenizers.losses.vf import VFLoss
from freqlat.tokenizers.types import BranchOutput, DiagonalGaussian, TokenizerOutput

OBJECTIVES = ("kl", "vq")
PIXEL_LOSSES = ("l1", "l2")


@dataclass
class AutoencoderLossConfig:
    """Every knob of :class:`AutoencoderLoss`; defaults are VA-VAE's / FA-VAE's recipe.

    ``disc_start``: first step (0-based, compared as ``step >= disc_start``) with the GAN on.
    ``disc_weight``: multiplies the clamped gradient ratio (LDM's ``discriminator_weight``).
    ``adaptive_weight_max``: clamp of that ratio (1e4 upstream).
    """

    objective: str = "kl"
    pixel_loss: str = "l1"
    perceptual_weight: float = 1.0
    logvar_init: float = 0.0
    kl_weight: float = 1e-6
    codebook_weight: float = 1.0
    disc_in_channels: int = 3
    disc_base_channels: int = 64
    disc_layers: int = 3
    disc_loss: str = "hinge"
    disc_start: int = 5001
    disc_factor: float = 1.0
    disc_weight: float = 0.5
    adaptive_weight_max: float = 1e4

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"pixel_loss must be one of {PIXEL_LOSSES}, got {self.pixel_loss!r}")
        if self.disc_loss not in DISCRIMINATOR_LOSSES:
            raise ValueError(
                f"disc_loss must be one of {tuple(DISCRIMINATOR_LOSSES)}, got {self.disc_loss!r}"
            )
        for name in ("perceptual_weight", "kl_weight", "codebook_weight", "disc_factor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.disc_weight < 0 or self.adaptive_weight_max <= 0:
            raise ValueError("disc_weight must be >= 0 and adaptive_weight_max > 0")


FROZEN_SUBMODULES = ("perceptual", "foundation")


class TrainableStateMixin:
    """Checkpoint only what a loss trains (``logvar``, VF projection, discriminators, BatchNorm
    statistics), leaving out the frozen perceptual and foundation networks."""

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """``state_dict()`` without the frozen perceptual / foundation weights."""
        state = self.state_dict()  # type: ignore[attr-defined]
        return {k: v for k, v in state.items() if not _is_frozen_key(k)}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a :meth:`trainable_state_dict`; ValueError names any missing or unexpected key."""
        result = self.load_state_dict(state, strict=False)  # type: ignore[attr-defined]
        missing = [k for k in result.missing_keys if not _is_frozen_key(k)]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"loss state does not match: missing {missing}, unexpected {result.unexpected_keys}"
            )


def _is_frozen_key(key: str) -> bool:
    return any(part in FROZEN_SUBMODULES for part in key.split("."))


def _zero(ref: Tensor) -> Tensor:
    return torch.zeros((), device=ref.device, dtype=torch.float32)


class AutoencoderLoss(TrainableStateMixin, nn.Module):
    """LDM-style autoencoder training loss with separate autoencoder and discriminator steps.

    ``perceptual`` is any frozen module mapping two N x 3 x H x W images in [-1, 1] to per-image
    distances (N or N x 1 x 1 x 1), normally ``freqlat.metrics.LPIPS``; it may be None when
    ``perceptual_weight`` is 0. ``vf`` adds VA-VAE's vision-foundation alignment loss.
    Trainable parameters: :meth:`autoencoder_parameters` (``logvar`` and the VF projection) go
    into the autoencoder's optimiser, :meth:`discriminator_parameters` into the second one.
    The autoencoder step also leaves gradients on the discriminator: zero them before its step.
    """

    def __init__(
        self,
        config: AutoencoderLossConfig | None = None,
        perceptual: nn.Module | None = None,
        vf: VFLoss | None = None,
    ) -> None:
        super().__init__()
        self.config = config = config or AutoencoderLossConfig()
        if config.perceptual_weight > 0 and perceptual is None:
            raise ValueError(
                "perceptual_weight > 0 needs a perceptual module (e.g. freqlat.metrics.LPIPS)"
            )
        self.perceptual = perceptual if config.perceptual_weight > 0 else None
        if self.perceptual is not None:
            self.perceptual.requires_grad_(False).eval()
        self.logvar: nn.Parameter | None = None
        if config.objective == "kl":
            self.logvar = nn.Parameter(torch.tensor(float(config.logvar_init)))
        self.discriminator = NLayerDiscriminator(
            config.disc_in_channels, config.disc_base_channels, config.disc_layers
        )
        self.vf = vf
        self._disc_loss = DISCRIMINATOR_LOSSES[config.disc_loss]

    def train(self, mode: bool = True) -> AutoencoderLoss:
        """Switch train/eval mode; the frozen perceptual network always stays in eval mode."""
        super().train(mode)
        if self.perceptual is not None:
            self.perceptual.eval()
        return self

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by the autoencoder optimiser (``logvar``, VF projection)."""
        params = [self.logvar] if self.logvar is not None else []
        if self.vf is not None:
            params += list(self.vf.projection.parameters())
        return params

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by the discriminator optimiser."""
        return list(self.discriminator.parameters())

    def disc_factor_at(self, step: int) -> float:
        """GAN factor at ``step``: ``disc_factor`` from ``disc_start`` on, 0 before."""
        return self.config.disc_factor if step >= self.config.disc_start else 0.0

    def discriminator_active(self, step: int) -> bool:
        """Whether the GAN terms are on at ``step`` (a loop may skip the discriminator step)."""
        return self.disc_factor_at(step) > 0 and self.config.disc_weight > 0

    def _reconstruction_map(self, inputs: Tensor, recon: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # loss arithmetic in float32 even under autocast (sums run over ~10^5 pixels)
        diff = inputs.float() - recon.float()
        pixel = diff.abs() if self.config.pixel_loss == "l1" else diff.pow(2)
        if self.perceptual is None:
            return pixel, pixel, _zero(pixel)
        if inputs.shape[1] != 3:
            raise ValueError(
                f"the perceptual loss needs 3-channel images, got {inputs.shape[1]} channels; "
                "set perceptual_weight=0 for other inputs"
            )
        perceptual = self.perceptual(inputs.contiguous(), recon.contiguous())
        perceptual = perceptual.float().reshape(inputs.shape[0], 1, 1, 1)
        return pixel + self.config.perceptual_weight * perceptual, pixel, perceptual.mean()

    def autoencoder_loss(
        self,
        inputs: Tensor,
        recon: Tensor,
        *,
        step: int,
        decoder_last_weight: Tensor,
        posterior: DiagonalGaussian | None = None,
        vq_loss: Tensor | None = None,
        latent: Tensor | None = None,
        encoder_last_weight: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Autoencoder-step loss: ``"loss"`` (to backpropagate) and detached terms for logging.

        ``posterior`` is required for ``objective="kl"``, ``vq_loss`` for ``"vq"``; ``latent``
        (the sampled latent that was decoded) and ``encoder_last_weight`` for the VF loss.
        """
        cfg = self.config
        if inputs.shape != recon.shape:
            raise ValueError(
                f"inputs and recon shapes differ: {tuple(inputs.shape)} vs {tuple(recon.shape)}"
            )
        if inputs.shape[1] != cfg.disc_in_channels:
            raise ValueError(
                f"this loss is configured for {cfg.disc_in_channels}-channel inputs, "
                f"got {tuple(inputs.shape)}"
            )
        rec_map, pixel_map, perceptual = self._reconstruction_map(inputs, recon)
        batch = inputs.shape[0]
        terms: dict[str, Tensor] = {
            "rec_loss": rec_map.detach().mean(),
            "pixel_loss": pixel_map.detach().mean(),
            "perceptual_loss": perceptual.detach(),
        }
        if cfg.objective == "kl":
            if posterior is None:
                raise ValueError("objective 'kl' needs the posterior")
            assert self.logvar is not None
            nll_loss = (rec_map / torch.exp(self.logvar) + self.logvar).sum() / batch
            kl_loss = DiagonalGaussian(posterior.mean.float(), posterior.logvar.float()).kl()
            kl_loss = kl_loss.sum() / batch
            loss = nll_loss + cfg.kl_weight * kl_loss
            terms["kl_loss"] = kl_loss.detach()
            terms["logvar"] = self.logvar.detach()
        else:
            if vq_loss is None:
                raise ValueError("objective 'vq' needs the model's vq_loss")
            nll_loss = rec_map.mean()
            loss = nll_loss + cfg.codebook_weight * vq_loss.float().mean()
            terms["vq_loss"] = vq_loss.detach().mean()
        terms["nll_loss"] = nll_loss.detach()

        disc_factor = self.disc_factor_at(step)
        if disc_factor > 0 and cfg.disc_weight > 0:
            g_loss = adversarial_loss(self.discriminator(recon.contiguous()).float())
            d_weight = adaptive_weight(
                nll_loss,
                g_loss,
                decoder_last_weight,
                scale=cfg.disc_weight,
                max_ratio=cfg.adaptive_weight_max,
            )
            loss = loss + d_weight * disc_factor * g_loss
            terms["g_loss"] = g_loss.detach()
            terms["d_weight"] = d_weight
        terms["disc_factor"] = torch.tensor(disc_factor)

        if self.vf is not None:
            if latent is None or encoder_last_weight is None:
                raise ValueError("the VF loss needs the sampled latent and encoder_last_weight")
            vf_terms = self.vf(inputs, latent)
            vf_loss = vf_terms["vf_loss"]
            vf_weight = self.vf.weight_for(nll_loss, vf_loss, encoder_last_weight)
            loss = loss + vf_weight * vf_loss
            terms.update({k: v.detach() for k, v in vf_terms.items()})
            terms["vf_weight"] = vf_weight.detach()
        terms["loss"] = loss
        return terms

    def discriminator_loss(self, inputs: Tensor, recon: Tensor, *, step: int) -> dict[str, Tensor]:
        """Discriminator-step loss on detached real and reconstructed images."""
        logits_real = self.discriminator(inputs.contiguous().detach()).float()
        logits_fake = self.discriminator(recon.contiguous().detach()).float()
        d_loss = self.disc_factor_at(step) * self._disc_loss(logits_real, logits_fake)
        return {
            "loss": d_loss,
            "disc_loss": d_loss.detach(),
            "logits_real": logits_real.detach().mean(),
            "logits_fake": logits_fake.detach().mean(),
        }

    def autoencoder_step(
        self, model: Any, inputs: Tensor, output: TokenizerOutput | BranchOutput, step: int
    ) -> dict[str, Tensor]:
        """:meth:`autoencoder_loss` for a tokenizer's (or one FA-VAE branch's) forward output.

        ``model`` supplies ``decoder_last_weight`` and ``encoder_last_weight``; for a
        :class:`BranchOutput` the branch's own ``input`` is the target and ``inputs`` is unused.
        """
        target = output.input if isinstance(output, BranchOutput) else inputs
        return self.autoencoder_loss(
            target,
            output.recon,
            step=step,
            decoder_last_weight=model.decoder_last_weight,
            posterior=output.posterior,
            vq_loss=getattr(output, "vq_loss", None),
            latent=output.latent,
            encoder_last_weight=model.encoder_last_weight if self.vf is not None else None,
        )

    def discriminator_step(
        self, inputs: Tensor, output: TokenizerOutput | BranchOutput, step: int
    ) -> dict[str, Tensor]:
        """:meth:`discriminator_loss` for a tokenizer's (or branch's) forward output."""
        target = output.input if isinstance(output, BranchOutput) else inputs
        return self.discriminator_loss(target, output.recon, step=step)
