"""FA-VAE's training loss: two branch autoencoder losses plus frequency-aware image terms.

The published FA-VAE trains its two branches with separate LDM autoencoder losses: the low
branch (upsampled LL/2, 3 channels) as a VA-VAE with LPIPS and the VF loss, the high branch
(detail bands/2 as 9 channels) with LPIPS weight 0, a 9-channel discriminator and no VF loss.
:class:`FrequencyAwareLoss` sums both and adds two terms on the recomposed image, both ours (no
publication defines them; docs/reproduction.md):

- a per-band weighted wavelet reconstruction error (LL and each detail band of each level);
- the mask loss: the pixel error weighted by a map of the target's own detail-band energy.

Both are reduced like the LDM NLL (summed over the image, divided by the batch), so a weight of
1 makes them as strong as the NLL's pixel term. A weight of 0 switches a term off and skips it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freqlat.tokenizers.losses.autoencoder import (
    AutoencoderLoss,
    AutoencoderLossConfig,
    TrainableStateMixin,
)
from freqlat.tokenizers.losses.vf import VFLoss, VFLossConfig
from freqlat.tokenizers.types import TokenizerOutput
from freqlat.wavelets import BAND_NAMES, dwt2, haar_dwt2

DISTANCES = ("l1", "l2")
MASK_NORMALIZATIONS = ("mean", "max")


def _distance(diff: Tensor, distance: str) -> Tensor:
    return diff.abs() if distance == "l1" else diff.pow(2)


def wavelet_band_loss(
    recon: Tensor,
    target: Tensor,
    *,
    ll_weight: float = 1.0,
    detail_weights: tuple[tuple[float, float, float], ...] = ((1.0, 1.0, 1.0),),
    wave: str = "haar",
    distance: str = "l2",
) -> dict[str, Tensor]:
    """Per-band weighted wavelet error between ``recon`` and ``target`` (N x C x H x W).

    One DWT of the difference (the transform is linear) with ``len(detail_weights)`` levels,
    ``detail_weights[j]`` weighting (LH, HL, HH) of level j + 1 (finest first). Each band's
    distance is summed over its coefficients and divided by the batch. Returns ``band_loss`` (the
    weighted sum) and the unweighted ``band_LL``, ``band_LH1``, ... terms. With orthonormal Haar,
    L2 and every weight 1 it equals the pixel sum of squared errors divided by the batch.
    """
    if recon.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(recon.shape)} vs {tuple(target.shape)}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    batch = target.shape[0]
    low, highs = dwt2((recon - target).float(), wave=wave, levels=len(detail_weights))
    terms = {"band_LL": _distance(low, distance).sum() / batch}
    total = ll_weight * terms["band_LL"]
    for level, (high, weights) in enumerate(zip(highs, detail_weights, strict=True), start=1):
        per_band = _distance(high, distance).sum(dim=(0, 1, 3, 4)) / batch
        for band, value, weight in zip(BAND_NAMES, per_band, weights, strict=True):
            terms[f"band_{band}{level}"] = value
            total = total + weight * value
    return {"band_loss": total, **terms}


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    coords = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return x


def detail_energy_weights(
    target: Tensor,
    *,
    floor: float = 0.25,
    normalization: str = "mean",
    clip: float = 4.0,
    blur_sigma: float = 0.0,
) -> Tensor:
    """Mask-loss weight map (N x 1 x H x W) from the target's own detail-band energy (ours).

    e = sum over channels and the LH/HL/HH bands of the one-level Haar detail coefficients
    squared, spread back to the 2 x 2 pixels each coefficient covers, optionally Gaussian-blurred
    (``blur_sigma`` in pixels, 0 = off); m = e / (mean or max of e per image), clipped to
    [0, ``clip``]; weights = floor + (1 - floor) * m. With "mean" normalisation and no clipping the
    map averages 1; a flat image (no detail energy) gives the uniform map ``floor``. Detached.
    """
    if normalization not in MASK_NORMALIZATIONS:
        raise ValueError(
            f"mask normalization must be one of {MASK_NORMALIZATIONS}, got {normalization!r}"
        )
    if not 0.0 <= floor <= 1.0 or clip <= 0 or blur_sigma < 0:
        raise ValueError(
            f"need 0 <= floor <= 1, clip > 0, blur_sigma >= 0; got {floor}, {clip}, {blur_sigma}"
        )
    height, width = target.shape[-2:]
    with torch.no_grad():
        _, high = haar_dwt2(target.detach().float())
        energy = high.pow(2).sum(dim=(1, 2)).unsqueeze(1)
        energy = energy.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        energy = energy[..., :height, :width]
        if blur_sigma > 0:
            energy = _gaussian_blur(energy, blur_sigma)
        flat = energy.flatten(1)
        scale = flat.mean(dim=1) if normalization == "mean" else flat.amax(dim=1)
        ratio = energy / scale.clamp_min(torch.finfo(energy.dtype).tiny).view(-1, 1, 1, 1)
        ratio = ratio.clamp(0.0, clip)
        return floor + (1.0 - floor) * ratio


def mask_loss(recon: Tensor, target: Tensor, weights: Tensor, *, distance: str = "l1") -> Tensor:
    """Pixel error weighted by ``weights`` (N x 1 x H x W), summed and divided by the batch."""
    if recon.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(recon.shape)} vs {tuple(target.shape)}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    return (weights * _distance(recon.float() - target.float(), distance)).sum() / target.shape[0]


def _low_branch_config() -> AutoencoderLossConfig:
    return AutoencoderLossConfig(perceptual_weight=1.0, disc_in_channels=3)


def _high_branch_config() -> AutoencoderLossConfig:
    return AutoencoderLossConfig(perceptual_weight=0.0, disc_in_channels=9)


@dataclass
class FrequencyAwareLossConfig:
    """Settings of :class:`FrequencyAwareLoss`.

    Defaults are the published FA-VAE (branch losses only, both frequency-aware terms off):
    ``low`` has LPIPS weight 1 and, through ``low_vf``, the VF loss (weight 0.1, margins
    0.5 / 0.25); ``high`` has LPIPS weight 0 and a 9-channel discriminator; ``low_vf=None``
    drops the VF loss. ``band_weight`` / ``mask_weight`` switch on the terms on the recomposed
    image (0 = off); ``band_detail_weights`` has one (LH, HL, HH) row per DWT level.
    """

    low: AutoencoderLossConfig = field(default_factory=_low_branch_config)
    high: AutoencoderLossConfig = field(default_factory=_high_branch_config)
    low_vf: VFLossConfig | None = field(default_factory=VFLossConfig)
    band_weight: float = 0.0
    band_ll_weight: float = 1.0
    band_detail_weights: tuple[tuple[float, float, float], ...] = ((1.0, 1.0, 1.0),)
    band_wave: str = "haar"
    band_distance: str = "l2"
    mask_weight: float = 0.0
    mask_floor: float = 0.25
    mask_normalization: str = "mean"
    mask_clip: float = 4.0
    mask_blur_sigma: float = 0.0
    mask_distance: str = "l1"

    def __post_init__(self) -> None:
        if self.band_weight < 0 or self.mask_weight < 0:
            raise ValueError("band_weight and mask_weight must be >= 0")
        if not self.band_detail_weights or any(len(r) != 3 for r in self.band_detail_weights):
            raise ValueError(
                "band_detail_weights needs one (LH, HL, HH) triple per level, got "
                f"{self.band_detail_weights!r}"
            )
        if self.band_distance not in DISTANCES or self.mask_distance not in DISTANCES:
            raise ValueError(f"band_distance and mask_distance must be one of {DISTANCES}")
        if self.mask_normalization not in MASK_NORMALIZATIONS:
            raise ValueError(f"mask_normalization must be one of {MASK_NORMALIZATIONS}")
        if not 0.0 <= self.mask_floor <= 1.0 or self.mask_clip <= 0 or self.mask_blur_sigma < 0:
            raise ValueError("need 0 <= mask_floor <= 1, mask_clip > 0 and mask_blur_sigma >= 0")
        if self.high.perceptual_weight > 0:
            raise ValueError("the high branch sees 9-channel bands: perceptual_weight must be 0")


class FrequencyAwareLoss(TrainableStateMixin, nn.Module):
    """FA-VAE loss: low- and high-branch :class:`AutoencoderLoss` plus band and mask terms.

    ``perceptual`` feeds the low branch's LPIPS; ``foundation`` (see
    :class:`~freqlat.tokenizers.losses.vf.FoundationFeatures`) its VF loss when
    ``config.low_vf`` is set. Logged terms are prefixed ``low/`` and ``high/``.
    """

    def __init__(
        self,
        config: FrequencyAwareLossConfig | None = None,
        perceptual: nn.Module | None = None,
        foundation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config = config or FrequencyAwareLossConfig()
        vf = None
        if config.low_vf is not None:
            if foundation is None:
                raise ValueError("low_vf is set: pass a foundation model (or set low_vf=None)")
            vf = VFLoss(config.low_vf, foundation)
        self.low = AutoencoderLoss(config.low, perceptual, vf)
        self.high = AutoencoderLoss(config.high, None, None)

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Parameters for the autoencoder optimiser (both branches' ``logvar``, VF projection)."""
        return self.low.autoencoder_parameters() + self.high.autoencoder_parameters()

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of both discriminators, for the discriminator optimiser."""
        return self.low.discriminator_parameters() + self.high.discriminator_parameters()

    def discriminator_active(self, step: int) -> bool:
        """Whether either branch's GAN is on at ``step``."""
        return self.low.discriminator_active(step) or self.high.discriminator_active(step)

    def image_terms(self, inputs: Tensor, recon: Tensor) -> dict[str, Tensor]:
        """Frequency-aware terms on the recomposed image; ``loss`` is their weighted sum."""
        cfg = self.config
        total = torch.zeros((), device=recon.device)
        terms: dict[str, Tensor] = {}
        if cfg.band_weight > 0:
            band = wavelet_band_loss(
                recon,
                inputs,
                ll_weight=cfg.band_ll_weight,
                detail_weights=cfg.band_detail_weights,
                wave=cfg.band_wave,
                distance=cfg.band_distance,
            )
            total = total + cfg.band_weight * band["band_loss"]
            terms.update({k: v.detach() for k, v in band.items()})
        if cfg.mask_weight > 0:
            weights = detail_energy_weights(
                inputs,
                floor=cfg.mask_floor,
                normalization=cfg.mask_normalization,
                clip=cfg.mask_clip,
                blur_sigma=cfg.mask_blur_sigma,
            )
            masked = mask_loss(recon, inputs, weights, distance=cfg.mask_distance)
            total = total + cfg.mask_weight * masked
            terms["mask_loss"] = masked.detach()
        terms["loss"] = total
        return terms

    def autoencoder_step(
        self, model: Any, inputs: Tensor, output: TokenizerOutput, step: int
    ) -> dict[str, Tensor]:
        """Autoencoder-step loss for an FA-VAE forward output; ``model.low`` / ``model.high``
        supply each branch's encoder and decoder last-layer weights."""
        branches = _branches(output)
        low = self.low.autoencoder_step(model.low, inputs, branches["low"], step)
        high = self.high.autoencoder_step(model.high, inputs, branches["high"], step)
        image = self.image_terms(inputs, output.recon)
        terms = {f"low/{k}": v.detach() for k, v in low.items()}
        terms.update({f"high/{k}": v.detach() for k, v in high.items()})
        terms.update({k: v for k, v in image.items() if k != "loss"})
        terms["loss"] = low["loss"] + high["loss"] + image["loss"]
        return terms

    def discriminator_step(
        self, inputs: Tensor, output: TokenizerOutput, step: int
    ) -> dict[str, Tensor]:
        """Discriminator-step loss: the sum of both branches' discriminator losses."""
        branches = _branches(output)
        low = self.low.discriminator_step(inputs, branches["low"], step)
        high = self.high.discriminator_step(inputs, branches["high"], step)
        terms = {f"low/{k}": v.detach() for k, v in low.items()}
        terms.update({f"high/{k}": v.detach() for k, v in high.items()})
        terms["loss"] = low["loss"] + high["loss"]
        return terms


def _branches(output: TokenizerOutput) -> dict[str, Any]:
    if not output.branches or set(output.branches) != {"low", "high"}:
        raise ValueError("FrequencyAwareLoss needs an FA-VAE output with 'low' and 'high' branches")
    return output.branches
