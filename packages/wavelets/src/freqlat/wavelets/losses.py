"""Wavelet-domain errors: the FA-VAE README's Low/High columns and a per-band weighted training loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_same_shape
from ._haar import haar_dwt2
from .bands import BAND_NAMES
from .transform import WaveletSpec, dwt2

__all__ = ["WaveletLoss", "band_mse", "multilevel_band_mse"]


def band_mse(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The FA-VAE README's Low and High columns for two image batches (docs/reproduction.md).

    One-level orthonormal Haar DWT (pytorch_wavelets convention, mode "zero") of both batches;
    ``low`` is the MSE between the LL subbands and ``high`` the MSE over all three detail subbands
    (LH, HL, HH) of every channel. No rescaling: for images in [-1, 1], LL lies in [-2, 2]. For
    even sizes ``mse(x, y) == (low + 3 * high) / 4`` exactly, by orthonormality.
    """
    check_same_shape(x, y)
    low_x, high_x = haar_dwt2(x)
    low_y, high_y = haar_dwt2(y)
    return torch.mean((low_x - low_y) ** 2), torch.mean((high_x - high_y) ** 2)


def multilevel_band_mse(
    x: torch.Tensor,
    y: torch.Tensor,
    levels: int = 1,
    wave: WaveletSpec = "haar",
    mode: str = "zero",
) -> dict[str, torch.Tensor]:
    """MSE of every subband of a ``levels``-level DWT, keyed ``LL, LH1, HL1, HH1, LH2, ...``.

    Level 1 is the finest. With ``levels=1`` and Haar, ``LL`` equals :func:`band_mse`'s low and the
    mean of the three detail entries equals its high.
    """
    check_same_shape(x, y)
    low_x, highs_x = dwt2(x, wave, levels, mode)
    low_y, highs_y = dwt2(y, wave, levels, mode)
    errors = {"LL": torch.mean((low_x - low_y) ** 2)}
    for level, (hx, hy) in enumerate(zip(highs_x, highs_y, strict=True), start=1):
        per_band = torch.mean((hx - hy) ** 2, dim=(0, 1, 3, 4))
        for band, value in zip(BAND_NAMES, per_band, strict=True):
            errors[f"{band}{level}"] = value
    return errors


class WaveletLoss(nn.Module):
    """Per-band weighted wavelet reconstruction error for training.

    ``loss = w_LL * MSE(LL) + sum over levels j and bands b of w_{j,b} * MSE(band_{j,b})``, each
    MSE a mean over its own coefficients. ``detail_weights`` is one number for every detail band,
    one per level, or a ``levels x 3`` table (LH, HL, HH per level, finest level first). For one
    Haar level, ``ll_weight = 1/4`` and all detail weights ``1/4`` give the pixel MSE exactly.
    """

    def __init__(
        self,
        levels: int = 1,
        ll_weight: float = 1.0,
        detail_weights: float | Sequence[float] | Sequence[Sequence[float]] = 1.0,
        wave: WaveletSpec = "haar",
        mode: str = "zero",
    ) -> None:
        super().__init__()
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        self.levels, self.wave, self.mode = levels, wave, mode
        self.weights = {"LL": float(ll_weight)}
        table = self._detail_table(levels, detail_weights)
        for level, row in enumerate(table, start=1):
            for band, weight in zip(BAND_NAMES, row, strict=True):
                self.weights[f"{band}{level}"] = float(weight)

    @staticmethod
    def _detail_table(
        levels: int, weights: float | Sequence[float] | Sequence[Sequence[float]]
    ) -> list[list[float]]:
        if isinstance(weights, (int, float)):
            return [[weights] * 3 for _ in range(levels)]
        rows = list(weights)
        if len(rows) != levels:
            raise ValueError(
                f"detail_weights needs one entry per level ({levels}), got {len(rows)}"
            )
        table = []
        for row in rows:
            if isinstance(row, (int, float)):
                table.append([row] * 3)
            elif len(row) == 3:
                table.append(list(row))
            else:
                raise ValueError(
                    f"each level's detail weights are one number or 3 (LH, HL, HH), got {row!r}"
                )
        return table

    def terms(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted per-band MSEs, keyed as :func:`multilevel_band_mse`, skipping zero weights."""
        return {
            name: value
            for name, value in multilevel_band_mse(x, y, self.levels, self.wave, self.mode).items()
            if self.weights[name] != 0.0
        }

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the per-band MSEs between reconstruction ``x`` and target ``y``."""
        terms = self.terms(x, y)
        total = x.new_zeros(())
        for name, value in terms.items():
            total = total + self.weights[name] * value
        return total

    def extra_repr(self) -> str:
        return (
            f"levels={self.levels}, wave={self.wave!r}, mode={self.mode!r}, weights={self.weights}"
        )
