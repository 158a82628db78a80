"""VAR's multi-scale residual vector quantiser.

At each scale k (coarse to fine) the residual is area-downsampled to pn x pn, every position
takes its nearest code (L2), the code map is bicubically upsampled back to the latent size,
passed through phi_k and added to the running reconstruction and taken off the residual.
Everything here runs in float32 with autocast off, so bf16 autocast around the model is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class QuantizerOutput:
    """Result of quantising a latent.

    ``quantized`` carries the value of the multi-scale reconstruction and the gradient of the
    input (straight-through estimator); ``indices`` holds one N x pn x pn long tensor per scale;
    ``loss`` is the scale-averaged codebook + beta * commitment MSE.
    """

    quantized: Tensor
    indices: list[Tensor]
    loss: Tensor


class Phi(nn.Conv2d):
    """Residual refinement phi(h) = ratio * conv3x3(h) + (1 - ratio) * h."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__(channels, channels, kernel_size=3, padding=1)
        self.ratio = ratio

    def forward(self, h: Tensor) -> Tensor:
        """Apply the mixed refinement."""
        return h * (1.0 - self.ratio) + super().forward(h) * self.ratio


def phi_schedule(num_scales: int, phi_count: int) -> list[int]:
    """Which of ``phi_count`` shared phi convs each scale uses (VAR's nearest-tick rule)."""
    if num_scales < 2:
        raise ValueError(f"need at least two scales, got {num_scales}")
    if phi_count < 1:
        raise ValueError(f"phi_count must be >= 1, got {phi_count}")
    k = phi_count
    # VAR spaces 4 ticks on [1/12, 11/12] and any other count on [1/2k, 1 - 1/2k]. Some scales
    # sit half-way between two ticks; the float arithmetic below follows numpy.linspace step by
    # step so that those ties resolve exactly as in VAR.
    start = 1 / 3 / k if k == 4 else 1 / 2 / k
    stop = 1 - start
    step = (stop - start) / (k - 1) if k > 1 else 0.0
    ticks = [i * step + start for i in range(k)]
    ticks[-1] = stop if k > 1 else start
    schedule = []
    for scale in range(num_scales):
        position = scale / (num_scales - 1)
        distances = [abs(position - tick) for tick in ticks]
        schedule.append(distances.index(min(distances)))
    return schedule


class MultiScaleResidualQuantizer(nn.Module):
    """Multi-scale residual VQ over a square latent whose side is the last patch size."""

    def __init__(
        self,
        channels: int,
        vocab_size: int,
        patch_sizes: tuple[int, ...],
        beta: float = 0.25,
        phi_count: int = 4,
        phi_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        if list(patch_sizes) != sorted(set(patch_sizes)) or patch_sizes[0] < 1:
            raise ValueError(f"patch_sizes must be strictly increasing positive, got {patch_sizes}")
        self.channels = channels
        self.vocab_size = vocab_size
        self.patch_sizes = tuple(patch_sizes)
        self.beta = beta
        # Taming-style uniform init; built from an explicit weight so that no normal_ init runs
        # first (it is very slow on the meta device).
        codebook = torch.empty(vocab_size, channels)
        nn.init.uniform_(codebook, -1.0 / vocab_size, 1.0 / vocab_size)
        self.embedding = nn.Embedding(vocab_size, channels, _weight=codebook)
        # A zero ratio means phi is the identity; VAR then keeps no phi parameters.
        self.phi = nn.ModuleList(
            Phi(channels, phi_ratio) if abs(phi_ratio) > 1e-6 else nn.Identity()
            for _ in range(phi_count)
        )
        self.phi_index = phi_schedule(len(patch_sizes), phi_count)

    @property
    def side(self) -> int:
        """Side of the latent the quantiser works on (the last patch size)."""
        return self.patch_sizes[-1]

    def _check(self, f: Tensor) -> None:
        if f.dim() != 4 or f.shape[1] != self.channels or f.shape[2:] != (self.side, self.side):
            raise ValueError(
                f"expected latents N x {self.channels} x {self.side} x {self.side} "
                f"(the last patch size), got {tuple(f.shape)}"
            )

    def nearest_codes(self, vectors: Tensor) -> Tensor:
        """Index of the L2-nearest code for each row of ``vectors`` (M x C), in float32."""
        codes = self.embedding.weight.detach().float()
        vectors = vectors.float()
        distances = vectors.square().sum(dim=1, keepdim=True) + codes.square().sum(dim=1)
        distances = torch.addmm(distances, vectors, codes.t(), alpha=-2.0, beta=1.0)
        return distances.argmin(dim=1)

    def _scale_contribution(self, scale: int, codes: Tensor) -> Tensor:
        """phi_k(upsampled code map) for code vectors N x C x pn x pn at ``scale``."""
        if codes.shape[-1] != self.side:
            codes = F.interpolate(codes, size=(self.side, self.side), mode="bicubic")
        return self.phi[self.phi_index[scale]](codes)

    @staticmethod
    def _accumulate(f_hat: Tensor | None, contribution: Tensor) -> Tensor:
        """``f_hat + contribution``, starting from zeros, in contiguous (NCHW) layout.

        The code maps arrive channels-last (an embedding lookup, permuted); a sum keeps the
        layout of its first operand, so starting from contiguous zeros keeps the running sum
        in VAR's layout, and the area downsampling of it rounds as VAR's does.
        """
        if f_hat is None:
            f_hat = torch.zeros(contribution.shape, device=contribution.device)
        return f_hat + contribution

    def forward(self, f: Tensor) -> QuantizerOutput:
        """Quantise ``f`` (N x C x side x side) over every scale."""
        self._check(f)
        with torch.autocast(device_type=f.device.type, enabled=False):
            f32 = f.float()
            target = f32.detach()
            residual = target.clone()
            f_hat = torch.zeros_like(target)
            loss = f32.new_zeros(())
            indices: list[Tensor] = []
            batch = f.shape[0]
            for scale, side in enumerate(self.patch_sizes):
                coarse = residual
                if side != self.side:
                    coarse = F.interpolate(residual, size=(side, side), mode="area")
                flat = coarse.permute(0, 2, 3, 1).reshape(-1, self.channels)
                idx = self.nearest_codes(flat).view(batch, side, side)
                indices.append(idx)
                contribution = self._scale_contribution(
                    scale, self.embedding(idx).permute(0, 3, 1, 2)
                )
                f_hat = f_hat + contribution
                residual = residual - contribution.detach()
                loss = loss + self.beta * F.mse_loss(f_hat.detach(), f32)
                loss = loss + F.mse_loss(f_hat, target)
            loss = loss / len(self.patch_sizes)
            quantized = (f_hat.detach() - target) + f32
        return QuantizerOutput(quantized=quantized, indices=indices, loss=loss)

    def cumulative_latents(self, indices: list[Tensor]) -> list[Tensor]:
        """Running reconstruction after each scale, from per-scale indices (N x pn x pn each)."""
        if len(indices) == 0 or len(indices) > len(self.patch_sizes):
            raise ValueError(f"expected 1..{len(self.patch_sizes)} index maps, got {len(indices)}")
        outputs: list[Tensor] = []
        f_hat: Tensor | None = None
        with torch.autocast(device_type=indices[0].device.type, enabled=False):
            for scale, idx in enumerate(indices):
                side = self.patch_sizes[scale]
                if idx.dim() == 2:
                    idx = idx.view(idx.shape[0], side, side)
                if idx.shape[1:] != (side, side):
                    raise ValueError(
                        f"scale {scale} needs {side} x {side} indices, got {tuple(idx.shape)}"
                    )
                if int(idx.min()) < 0 or int(idx.max()) >= self.vocab_size:
                    raise ValueError(f"indices must lie in [0, {self.vocab_size})")
                codes = self.embedding(idx).permute(0, 3, 1, 2).float()
                contribution = self._scale_contribution(scale, codes)
                f_hat = self._accumulate(f_hat, contribution)
                outputs.append(f_hat)
        return outputs

    def teacher_forcing_inputs(self, indices: list[Tensor]) -> Tensor:
        """A next-scale predictor's inputs for every scale after the first, from all scales' indices.

        The input of scale k + 1 is the running reconstruction after scale k, area-downsampled
        to pn_{k+1} x pn_{k+1}; the result is N x (sum of pn^2 over scales 2..K) x C, scale by
        scale, row-major within a scale (FoundationVision/VAR ``models/quant.py``
        ``idxBl_to_var_input``). The last scale's indices are checked but not used.
        """
        if len(indices) != len(self.patch_sizes):
            raise ValueError(f"expected {len(self.patch_sizes)} index maps, got {len(indices)}")
        partial = self.cumulative_latents(indices)[:-1]
        with torch.autocast(device_type=indices[0].device.type, enabled=False):
            inputs = [
                F.interpolate(f_hat, size=(side, side), mode="area").flatten(2).transpose(1, 2)
                for f_hat, side in zip(partial, self.patch_sizes[1:], strict=True)
            ]
        return torch.cat(inputs, dim=1)

    def next_autoregressive_input(
        self, scale: int, f_hat: Tensor | None, codes: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """One generation step: add scale ``scale``'s code vectors to the running reconstruction.

        ``codes`` are the chosen code vectors N x C x pn x pn, ``f_hat`` the reconstruction so
        far (None before the first scale). Returns the new reconstruction and the next scale's
        input (the reconstruction area-downsampled to its size; None after the last scale), as
        FoundationVision/VAR ``models/quant.py`` ``get_next_autoregressive_input``.
        """
        side = self.patch_sizes[scale]
        if codes.dim() != 4 or codes.shape[1:] != (self.channels, side, side):
            raise ValueError(
                f"scale {scale} needs code vectors N x {self.channels} x {side} x {side}, "
                f"got {tuple(codes.shape)}"
            )
        with torch.autocast(device_type=codes.device.type, enabled=False):
            contribution = self._scale_contribution(scale, codes.float())
            f_hat = self._accumulate(f_hat, contribution)
            if scale == len(self.patch_sizes) - 1:
                return f_hat, None
            following = self.patch_sizes[scale + 1]
            return f_hat, F.interpolate(f_hat, size=(following, following), mode="area")

    def indices_to_latent(self, indices: list[Tensor]) -> Tensor:
        """The quantised latent N x C x side x side given all scales' indices."""
        if len(indices) != len(self.patch_sizes):
            raise ValueError(f"expected {len(self.patch_sizes)} index maps, got {len(indices)}")
        return self.cumulative_latents(indices)[-1]
