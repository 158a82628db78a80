"""The reconstruction table: Recon, Low, High, LPIPS, rFID, PSNR and SSIM for each tokenizer.

Each tokenizer reconstructs the same first ``num_images`` images of the evaluation split (the
dataset's own order, no flips). *How* is fixed by a named reconstruction protocol
(:data:`RECON_PROTOCOLS`): the crop, whether the latent is a posterior sample or its mode, and
whether the pixel columns see the raw or the clamped decoder output. The default, ``fa-vae``,
repeats the FA-VAE author's evaluation scripts, so that our rows can stand next to the FA-VAE
README's (docs/reproduction.md). Posterior samples use one seeded draw per image (from ``seed``
and the image's index, through ``encode_latent``'s per-image generators), so the table does not
depend on the batch size or the number of processes: under torch.distributed rank ``r`` takes
images ``r, r + world_size, ...`` and the metric sums are all-reduced.

LPIPS and rFID need pretrained networks that cannot be downloaded here. When their weights are
missing the columns are reported as missing with the loader's message (file, places searched,
URL); no number is ever made up, and random weights are never used for a metric.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from freqlat.core.data import check_crop
from freqlat.metrics import (
    LPIPS,
    InceptionFeatures,
    InceptionMetrics,
    ReconstructionMetrics,
    get_protocol,
)
from freqlat.tokenizers import LoadedTokenizer, Tokenizer

logger = logging.getLogger("freqlat.eval")

COLUMNS: tuple[str, ...] = ("Recon", "Low", "High", "LPIPS", "rFID", "PSNR", "SSIM")
"""The table's metric columns, in order (the FA-VAE README's five, then PSNR and SSIM)."""

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
}


@dataclass(frozen=True)
class ReconProtocol:
    """How the reconstructions behind a table are made (see :data:`RECON_PROTOCOLS`).

    - ``crop``: a key of :data:`freqlat.core.CROPS`, how originals are cut to the image size;
    - ``latent``: ``"sample"`` (one seeded posterior draw per image) or ``"mode"``; VQ models
      always decode their quantised latent;
    - ``clamp``: whether the reconstruction is clamped to [-1, 1] before Recon, Low, High and
      LPIPS (PSNR and SSIM always see it clamped, rFID always rounded to uint8).
    """

    name: str
    crop: str
    latent: str
    clamp: bool
    description: str

    def __post_init__(self) -> None:
        check_crop(self.crop)
        if self.latent not in ("sample", "mode"):
            raise ValueError(f"latent must be 'sample' or 'mode', got {self.latent!r}")


RECON_PROTOCOLS: dict[str, ReconProtocol] = {
    "fa-vae": ReconProtocol(
        "fa-vae",
        crop="resize-center",
        latent="sample",
        clamp=False,
        description=(
            "as the FA-VAE author's evaluation (HY-Wong/LightningDiT vavae/analysis.py and "
            "analysis_fidelity.py): torchvision Resize + CenterCrop of each original, the decoder "
            "output of one posterior sample per image (seeded by the image index; VQ: the "
            "quantised latent), Recon/Low/High/LPIPS on the unclamped output, PSNR/SSIM on it "
            "clamped to [-1, 1], rFID on it clamped and rounded to uint8"
        ),
    ),
    "deterministic": ReconProtocol(
        "deterministic",
        crop="adm",
        latent="mode",
        clamp=True,
        description=(
            "ADM center crop of each original, the decoder output of the posterior mode (VQ: the "
            "quantised latent), clamped to [-1, 1] before every column, rounded to uint8 for rFID"
        ),
    ),
}
"""The named reconstruction protocols of ``freqlat-eval recon --recon-protocol``."""

RECON_PROTOCOL_ALIASES: dict[str, str] = {"seed": "fa-vae"}
"""Former protocol names, still accepted for one release: old name -> name."""


def get_recon_protocol(name: str) -> ReconProtocol:
    """Look a reconstruction protocol up by name (a former name logs that it is an alias);
    ValueError lists the known names."""
    if name in RECON_PROTOCOL_ALIASES:
        logger.warning(
            "reconstruction protocol %r is an alias of %r, kept for one release",
            name,
            RECON_PROTOCOL_ALIASES[name],
        )
        name = RECON_PROTOCOL_ALIASES[name]
    if name not in RECON_PROTOCOLS:
        raise ValueError(
            f"unknown reconstruction protocol {name!r}; known: {sorted(RECON_PROTOCOLS)}"
        )
    return RECON_PROTOCOLS[name]


def image_generators(
    indices: list[int], seed: int, device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One generator per image index (on ``device``), so that image ``i`` always gets the same
    draw.

    Image ``i``'s generator is seeded from ``(seed, i)`` through numpy's SeedSequence, whatever
    the batch it is in and whichever rank evaluates it.
    """
    generators = []
    for index in indices:
        state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator(device=device)
        generators.append(generator.manual_seed(int(state[0]) << 32 | int(state[1])))
    return generators


def reconstruct(
    model: Tokenizer, images: Tensor, indices: list[int], protocol: ReconProtocol, seed: int
) -> Tensor:
    """The protocol's reconstruction of ``images`` (dataset indices ``indices``), float32.

    The latent is ``model.encode_latent``'s: a posterior sample per image from
    :func:`image_generators`, or the mode (VQ models: the quantised latent either way).
    """
    sample = protocol.latent == "sample"
    generators = image_generators(indices, seed) if sample else None
    latent = model.encode_latent(images, sample=sample, generator=generators)
    recon = model.decode(latent).float()
    return recon.clamp(-1.0, 1.0) if protocol.clamp else recon


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
    rfid_protocol: str = "rfid-fa-vae",
    device: torch.device | str = "cpu",
) -> MetricNetworks:
    """Load LPIPS (VGG, v0.1) and the FID Inception; a missing weights file marks its column."""
    protocol = get_protocol(rfid_protocol)
    missing: dict[str, str] = {}
    lpips = inception = None
    try:
        # Off: reconstructions may be unclamped (protocol "fa-vae"); originals are in range.
        lpips = LPIPS("vgg", "0.1", trunk_path=lpips_trunk, check_range=False).to(device)
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


def table_protocol(
    networks: MetricNetworks, recon: ReconProtocol, data: dict[str, Any]
) -> dict[str, str]:
    """How every column was measured, plus the data it was measured on."""
    protocol = dict(BASE_PROTOCOL)
    rfid = get_protocol(networks.rfid_protocol)
    protocol["rFID"] = f"{rfid.name}: {rfid.description} Originals vs their reconstructions."
    protocol["reconstruction"] = f"{recon.name}: {recon.description}; posterior seed {data['seed']}"
    protocol["data"] = (
        f"{data['data']} split {data['split']!r}, first {data['num_images']} images, "
        f"{data['image_size']} px (crop {recon.crop}), no flips"
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
    protocol: ReconProtocol = RECON_PROTOCOLS["fa-vae"],
    seed: int = 0,
    num_workers: int = 0,
) -> dict[str, Any]:
    """One table row: every column's value, None where missing, and the reasons in ``missing``.

    ``indices`` are this rank's images (decoded by ``num_workers`` loader processes), made into
    reconstructions as ``protocol`` says (posterior samples seeded by ``seed``); the accumulators
    are all-reduced before computing.
    """
    model = tokenizer.model.to(device).eval()
    pixel = ReconstructionMetrics(networks.lpips, device=device, check_range=protocol.clamp)
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
    start = 0
    for batch, _ in loader:
        originals = batch.to(device, non_blocking=True)
        batch_indices = indices[start : start + len(batch)]
        start += len(batch)
        recon = reconstruct(model, originals, batch_indices, protocol, seed)
        pixel.update(originals, recon)
        if real is not None and fake is not None:
            real.update(originals)
            fake.update(recon.clamp(-1.0, 1.0))
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
