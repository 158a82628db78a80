"""Accumulators: metrics collected batch by batch, merged across processes, computed once.

Every accumulator has ``update(...)``, ``merge(other)`` (same process), ``all_reduce()`` (across
``torch.distributed`` ranks; a no-op when no process group is initialised) and ``compute()``.
The same object serves one CPU, one GPU or many GPUs: state lives on the device it was made on
(use CUDA tensors with NCCL, CPU tensors with gloo).

Sums are kept in float64, so a run split over ranks equals the single-process run up to float64
summation order (relative differences near 1e-15). Row banks gather in rank order.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from freqlat.metrics._checks import check_features, check_image_batch, check_same_shape
from freqlat.metrics.pixel import band_errors, per_image_mse, ssim


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class FeatureStatistics:
    """Running mean and covariance of feature rows (for FID and sFID), from float64 sums."""

    def __init__(self, dim: int, device: torch.device | str | None = None) -> None:
        self.dim = dim
        self.count = torch.zeros((), dtype=torch.float64, device=device)
        self.total = torch.zeros(dim, dtype=torch.float64, device=device)
        self.total_outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def update(self, features: torch.Tensor) -> None:
        """Add N x dim feature rows."""
        check_features(features, "features")
        if features.shape[1] != self.dim:
            raise ValueError(f"features must have {self.dim} columns, got {features.shape[1]}")
        f = features.to(device=self.total.device, dtype=torch.float64)
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.total_outer += f.T @ f

    def merge(self, other: FeatureStatistics) -> None:
        """Add another accumulator's rows to this one."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of width {other.dim} into width {self.dim}")
        self.count += other.count.to(self.count.device)
        self.total += other.total.to(self.total.device)
        self.total_outer += other.total_outer.to(self.total_outer.device)

    def all_reduce(self) -> None:
        """Sum the statistics over all ranks (every rank ends with the global statistics)."""
        if _distributed():
            for tensor in (self.count, self.total, self.total_outer):
                dist.all_reduce(tensor)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased covariance (divides by N - 1) of every row seen, float64."""
        n = float(self.count)
        if n < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {int(n)}")
        mu = self.total / n
        sigma = (self.total_outer - n * torch.outer(mu, mu)) / (n - 1)
        return mu, (sigma + sigma.T) / 2


class FeatureBank:
    """Keeps every feature row (for Inception Score and precision/recall, which need them all)."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.rows: list[torch.Tensor] = []

    def update(self, features: torch.Tensor) -> None:
        """Append N x D rows."""
        check_features(features, "features")
        if self.rows and features.shape[1] != self.rows[0].shape[1]:
            raise ValueError(
                f"features must have {self.rows[0].shape[1]} columns, got {features.shape[1]}"
            )
        self.rows.append(features.detach().to(self.device, torch.float32))

    def merge(self, other: FeatureBank) -> None:
        """Append another bank's rows after this one's."""
        self.rows.extend(r.to(self.device) for r in other.rows)

    def all_reduce(self) -> None:
        """Gather every rank's rows, concatenated in rank order, onto every rank."""
        if not _distributed():
            return
        local = self.compute() if self.rows else torch.zeros(0, 0, device=self.device)
        sizes = torch.tensor(
            [local.shape[0], local.shape[1] if local.numel() else 0], device=self.device
        )
        all_sizes = [torch.zeros_like(sizes) for _ in range(dist.get_world_size())]
        dist.all_gather(all_sizes, sizes)
        width = max(int(s[1]) for s in all_sizes)
        longest = max(int(s[0]) for s in all_sizes)
        padded = torch.zeros(longest, width, device=self.device)
        padded[: local.shape[0], : local.shape[1]] = local
        gathered = [torch.zeros_like(padded) for _ in all_sizes]
        dist.all_gather(gathered, padded)
        self.rows = [
            g[: int(s[0])] for g, s in zip(gathered, all_sizes, strict=True) if int(s[0]) > 0
        ]

    def compute(self) -> torch.Tensor:
        """All rows as one N x D float32 tensor."""
        if not self.rows:
            raise ValueError("the feature bank is empty: call update() first")
        return torch.cat(self.rows)


class ReconstructionMetrics:
    """The reconstruction table's pixel columns, accumulated over batches of [-1, 1] images.

    ``compute()`` returns ``recon`` (pixel MSE), ``low`` and ``high`` (Haar band MSEs, the FA-VAE
    README's columns, docs/reproduction.md), ``psnr`` (mean of per-image PSNR), ``psnr_dataset``
    (PSNR of the pooled MSE), ``ssim`` (mean per-image SSIM) and, when an ``lpips`` module is given, ``lpips`` (mean per-image
    distance). PSNR/SSIM use ``data_range = 2`` (images in [-1, 1]).

    ``check_range=False`` accepts reconstructions outside [-1, 1]: raw decoder outputs, which the
    FA-VAE author's evaluation measures before any clamping. Recon, Low, High and LPIPS then see the raw
    values; PSNR and SSIM, defined for images inside their data range, see the reconstruction
    clamped to [-1, 1]. Originals are always checked.
    """

    DATA_RANGE = 2.0
    _KEYS = ("images", "pixels", "sq_error", "low", "high", "psnr", "ssim", "lpips")

    def __init__(
        self,
        lpips: torch.nn.Module | None = None,
        device: torch.device | str | None = None,
        check_range: bool = True,
    ) -> None:
        self.lpips = lpips
        self.check_range = check_range
        self.sums = {key: torch.zeros((), dtype=torch.float64, device=device) for key in self._KEYS}

    def update(self, originals: torch.Tensor, reconstructions: torch.Tensor) -> None:
        """Add a batch of originals and reconstructions (N x C x H x W, [-1, 1], even H and W)."""
        check_image_batch(originals, "originals")
        check_image_batch(reconstructions, "reconstructions", check_range=self.check_range)
        check_same_shape(originals, reconstructions, ("originals", "reconstructions"))
        if originals.shape[-1] % 2 or originals.shape[-2] % 2:
            raise ValueError(
                f"band errors need even image sizes, got {tuple(originals.shape[-2:])}"
            )
        device = self.sums["images"].device
        x, y = originals.to(device), reconstructions.to(device)
        n, pixels = x.shape[0], x.numel()
        mse = per_image_mse(x, y)
        low, high = band_errors(x, y, check_range=False)
        self.sums["images"] += n
        self.sums["pixels"] += pixels
        self.sums["sq_error"] += mse.sum() * (pixels // n)
        # One Haar level: the LL band holds a quarter of the coefficients, the details three quarters.
        self.sums["low"] += low * (pixels / 4)
        self.sums["high"] += high * (3 * pixels / 4)
        in_range = y if self.check_range else y.clamp(-1.0, 1.0)
        in_range_mse = mse if self.check_range else per_image_mse(x, in_range)
        self.sums["psnr"] += (10 * torch.log10(self.DATA_RANGE**2 / in_range_mse)).sum()
        self.sums["ssim"] += ssim(x, in_range, data_range=self.DATA_RANGE).sum()
        if self.lpips is not None:
            with torch.no_grad():
                self.sums["lpips"] += self.lpips(x, y).double().sum()

    def merge(self, other: ReconstructionMetrics) -> None:
        """Add another accumulator's sums."""
        for key in self._KEYS:
            self.sums[key] += other.sums[key].to(self.sums[key].device)

    def all_reduce(self) -> None:
        """Sum over all ranks."""
        if _distributed():
            stacked = torch.stack([self.sums[key] for key in self._KEYS])
            dist.all_reduce(stacked)
            self.sums = dict(zip(self._KEYS, stacked.unbind(), strict=True))

    def compute(self) -> dict[str, float]:
        """The averaged metrics (see the class docstring)."""
        images, pixels = float(self.sums["images"]), float(self.sums["pixels"])
        if images == 0:
            raise ValueError("no images accumulated: call update() first")
        recon = float(self.sums["sq_error"]) / pixels
        result = {
            "recon": recon,
            "low": float(self.sums["low"]) / (pixels / 4),
            "high": float(self.sums["high"]) / (3 * pixels / 4),
            "psnr": float(self.sums["psnr"]) / images,
            "psnr_dataset": 10 * math.log10(self.DATA_RANGE**2 / recon) if recon > 0 else math.inf,
            "ssim": float(self.sums["ssim"]) / images,
        }
        if self.lpips is not None:
            result["lpips"] = float(self.sums["lpips"]) / images
        return result
