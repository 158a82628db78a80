"""The reconstruction table: Recon, Low, High, LPIPS, rFID, PSNR and SSIM for each tokenizer.

Each tokenizer reconstructs the same first ``num_images`` images of the evaluation split (the
dataset's own order, no flips) from its posterior mode (VQ models: the quantised latent); the
reconstructions are clamped to [-1, 1], as saved images would be. Under torch.distributed rank
``r`` takes images ``r, r + world_size, ...`` and the metric sums are all-reduced, so the table
does not depend on the number of processes.

LPIPS and rFID need pretrained networks that cannot be downloaded here. When their weights are
missing the columns are reported as missing with the loader's message (file, places searched,
URL); no number is ever made up, and random weights are never used for a metric.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from freqlat.eval.sources import LoadedTokenizer
from freqlat.metrics import (
    LPIPS,
    InceptionFeatures,
    InceptionMetrics,
    ReconstructionMetrics,
    get_protocol,
)

logger = logging.getLogger("freqlat.eval")

COLUMNS: tuple[str, ...] = ("Recon", "Low", "High", "LPIPS", "rFID", "PSNR", "SSIM")
"""The table's metric columns, in order (the seed README's five, then PSNR and SSIM)."""

BASE_PROTOCOL: dict[str, str] = {
    "Recon": "mean squared error over all pixels and channels, images in [-1, 1]",
    "Low": (
        "MSE between the LL subbands of a one-level orthonormal Haar DWT (pytorch_wavelets "
        "convention, mode zero) of original and reconstruction; not rescaled"
    ),
    "High": "MSE over the three detail subbands (LH, HL, HH) of the same transform, all colours",
    "LPIPS": "lpips VGG trunk with the v0.1 linear layers on [-1, 1] images, mean over images",
    "PSNR": "mean over images of per-image PSNR, data range 2 (images in [-1, 1])",
    "SSIM": (
        "mean over images of per-image SSIM, Gaussian window sigma 1.5 (11 taps), population "
        "covariance, data range 2, channels averaged (scikit-image's settings)"
    ),
    "reconstruction": (
        "decode of the posterior mode (VQ: quantised latent) of each original, clamped to [-1, 1]"
    ),
}


@dataclass
class MetricNetworks:
    """The pretrained networks of the LPIPS and rFID columns, or why each is missing."""

    lpips: nn.Module | None
    inception: InceptionFeatures | None
    rfid_protocol: str
    missing: dict[str, str] = field(default_factory=dict)


def load_metric_networks(
    *,
    lpips_trunk: str | None = None,
    inception_weights: str | None = None,
    rfid_protocol: str = "rfid-seed",
    device: torch.device | str = "cpu",
) -> MetricNetworks:
    """Load LPIPS (VGG, v0.1) and the FID Inception; a missing weights file marks its column."""
    protocol = get_protocol(rfid_protocol)
    missing: dict[str, str] = {}
    lpips = inception = None
    try:
        lpips = LPIPS("vgg", "0.1", trunk_path=lpips_trunk).to(device)
    except FileNotFoundError as exc:
        missing["LPIPS"] = str(exc)
    try:
        inception = InceptionFeatures(weights_path=inception_weights, resize=protocol.resize)
        inception = inception.to(device)
    except FileNotFoundError as exc:
        missing["rFID"] = str(exc)
    for column, reason in missing.items():
        logger.warning("%s will be reported as missing: %s", column, reason)
    return MetricNetworks(lpips, inception, protocol.name, missing)


def table_protocol(networks: MetricNetworks, data: dict[str, Any]) -> dict[str, str]:
    """How every column was measured, plus the data it was measured on."""
    protocol = dict(BASE_PROTOCOL)
    rfid = get_protocol(networks.rfid_protocol)
    protocol["rFID"] = f"{rfid.name}: {rfid.description} Originals vs their reconstructions."
    protocol["data"] = (
        f"{data['data']} split {data['split']!r}, first {data['num_images']} images, "
        f"{data['image_size']} px (ADM center crop), no flips"
    )
    return protocol


@torch.no_grad()
def evaluate_tokenizer(
    tokenizer: LoadedTokenizer,
    dataset: Dataset,
    indices: list[int],
    networks: MetricNetworks,
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> dict[str, Any]:
    """One table row: every column's value, None where missing, and the reasons in ``missing``.

    ``indices`` are this rank's images (decoded by ``num_workers`` loader processes); the
    accumulators are all-reduced before computing.
    """
    model = tokenizer.model.to(device).eval()
    pixel = ReconstructionMetrics(networks.lpips, device=device)
    real = fake = None
    if networks.inception is not None:
        real = InceptionMetrics(
            networks.inception, networks.rfid_protocol, keep_features=False, device=device
        )
        fake = InceptionMetrics(
            networks.inception, networks.rfid_protocol, keep_features=False, device=device
        )
    loader = DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    for batch, _ in loader:
        originals = batch.to(device, non_blocking=True)
        recon = model(originals, sample=False).recon.float().clamp(-1.0, 1.0)
        pixel.update(originals, recon)
        if real is not None and fake is not None:
            real.update(originals)
            fake.update(recon)
    pixel.all_reduce()
    values = pixel.compute()
    count = int(pixel.sums["images"])
    row: dict[str, Any] = {
        "tokenizer": tokenizer.name,
        "Recon": values["recon"],
        "Low": values["low"],
        "High": values["high"],
        "LPIPS": values.get("lpips"),
        "rFID": None,
        "PSNR": values["psnr"],
        "SSIM": values["ssim"],
        "num_images": count,
        "source": tokenizer.source,
        "missing": dict(networks.missing),
    }
    if real is not None and fake is not None:
        real.all_reduce()
        fake.all_reduce()
        if count < 2:
            row["missing"]["rFID"] = f"FID needs at least 2 images, got {count}"
        else:
            row["rFID"] = float(fake.compute(real)["fid"])
    return row
