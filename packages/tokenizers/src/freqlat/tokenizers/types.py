"""Result types shared by every tokenizer and by the training losses.

These dataclasses are the contract between the models (encode/forward) and the losses: a loss
reads a :class:`TokenizerOutput` and never needs to know which model produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

LOGVAR_MIN = -30.0
LOGVAR_MAX = 20.0


@dataclass
class DiagonalGaussian:
    """Diagonal Gaussian posterior q(z|x) of a KL autoencoder over an N x C x h x w latent.

    ``logvar`` is clamped to [-30, 20] on construction, as in the LDM autoencoders.
    """

    mean: Tensor
    logvar: Tensor

    def __post_init__(self) -> None:
        if self.mean.shape != self.logvar.shape:
            raise ValueError(
                f"mean and logvar must have the same shape, got {tuple(self.mean.shape)} "
                f"and {tuple(self.logvar.shape)}"
            )
        self.logvar = torch.clamp(self.logvar, LOGVAR_MIN, LOGVAR_MAX)

    @classmethod
    def from_moments(cls, moments: Tensor) -> DiagonalGaussian:
        """Build the posterior from an N x 2C x h x w tensor holding [mean, logvar] on dim 1."""
        if moments.dim() < 2 or moments.shape[1] % 2 != 0:
            raise ValueError(
                f"moments need an even channel count (mean and logvar), got {tuple(moments.shape)}"
            )
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return cls(mean, logvar)

    @property
    def std(self) -> Tensor:
        """Standard deviation exp(logvar / 2)."""
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        """Variance exp(logvar)."""
        return torch.exp(self.logvar)

    def sample(
        self, generator: torch.Generator | Sequence[torch.Generator] | None = None
    ) -> Tensor:
        """Reparameterised sample mean + std * eps (differentiable in mean and logvar).

        ``generator`` is one generator for the whole batch (on the latent's device), or one per
        item: item i's noise is then drawn from ``generator[i]`` on that generator's device (in
        float32, then moved), so that it does not depend on how items are batched.
        """
        if generator is None or isinstance(generator, torch.Generator):
            eps = torch.randn(
                self.mean.shape,
                generator=generator,
                device=self.mean.device,
                dtype=self.mean.dtype,
            )
        else:
            if len(generator) != self.mean.shape[0]:
                raise ValueError(
                    f"{len(generator)} generators for a batch of {self.mean.shape[0]} latents"
                )
            shape = self.mean.shape[1:]
            eps = torch.stack(
                [torch.randn(shape, generator=g, device=g.device) for g in generator]
            ).to(self.mean)
        return self.mean + self.std * eps

    def mode(self) -> Tensor:
        """The most likely latent, i.e. the mean."""
        return self.mean

    def kl(self) -> Tensor:
        """KL(q || N(0, I)) per sample, summed over every non-batch dimension (shape N)."""
        terms = 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar)
        return terms.flatten(1).sum(dim=1)


@dataclass
class BranchOutput:
    """What one KL autoencoder of a multi-branch model saw and produced, in its own space.

    For FA-VAE, ``input`` is the branch's target (e.g. the upsampled LL/2 image for "low", the
    9-channel detail bands/2 for "high"); ``recon`` is its reconstruction of that target.
    """

    input: Tensor
    recon: Tensor
    posterior: DiagonalGaussian
    latent: Tensor


@dataclass
class TokenizerOutput:
    """Everything a tokenizer's forward pass hands to its loss.

    - ``recon``: N x 3 x H x W reconstruction in [-1, 1] image space.
    - ``latent``: the sampled (KL) or quantised (VQ) latent that was decoded.
    - ``posterior``: the KL posterior (None for VQ models and for FA-VAE, see ``branches``).
    - ``vq_loss``: VQ models only, a scalar: the per-scale codebook MSE + beta (0.25) * commitment
      MSE, averaged over the scales (as VAR's quantiser does); add it to the loss as is.
    - ``indices``: VQ models only, the per-scale token indices (N x pn x pn each).
    - ``branches``: FA-VAE only, ``{"low": BranchOutput, "high": BranchOutput}``.
    """

    recon: Tensor
    latent: Tensor
    posterior: DiagonalGaussian | None = None
    vq_loss: Tensor | None = None
    indices: list[Tensor] | None = None
    branches: dict[str, BranchOutput] | None = None
