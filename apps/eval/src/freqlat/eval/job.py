"""The reconstruction evaluation as a submittable job (local, submitit debug, or SLURM)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import submitit
import torch

from freqlat.core import cleanup, config_field, init_distributed, open_dataset
from freqlat.eval.recon import (
    RECON_PROTOCOL_ALIASES,
    RECON_PROTOCOLS,
    evaluate_tokenizer,
    get_recon_protocol,
    load_metric_networks,
    table_protocol,
)
from freqlat.eval.table import markdown_table, write_tables
from freqlat.metrics import PROTOCOL_ALIASES, PROTOCOLS, get_protocol
from freqlat.tokenizers import load_tokenizer

RFID_PROTOCOLS = tuple(name for name in (*PROTOCOLS, *PROTOCOL_ALIASES) if name.startswith("rfid"))
"""The rFID protocols ``--rfid-protocol`` accepts (former names included)."""

logger = logging.getLogger("freqlat.eval")


@dataclass
class ReconEvalSettings:
    """What ``freqlat-eval recon`` measures and where it writes the table.

    A former protocol name (``seed``, ``rfid-seed``) is replaced by its current one, with a
    warning that it is an alias.
    """

    tokenizers: list[str] = config_field(
        help="tokenizers to evaluate: a save_pretrained directory, a freqlat-train run "
        "directory (DIR:raw for its raw weights), an official preset or PRESET=PATH, or "
        "random:PRESET",
        flag="--tokenizer",
        metavar="SPEC",
    )
    num_images: int = config_field(help="evaluate the first N images of the split")
    data: str = config_field("embedded", help="'embedded', an ImageNet root or an image folder")
    split: str = config_field("val", help="the split of an ImageNet root")
    image_size: int = config_field(256, help="image side in pixels")
    batch_size: int = config_field(32, help="images per batch and process")
    num_workers: int = config_field(4, help="image decoding processes")
    out_dir: str = config_field(
        "results/recon", help="directory for recon.csv/json/md", flag="--out", metavar="DIR"
    )
    lpips_trunk: str | None = config_field(
        None, help="torchvision vgg16 weights file (none: the torch hub cache)"
    )
    inception_weights: str | None = config_field(
        None, help="FID Inception weights file (none: the torch hub cache)"
    )
    rfid_protocol: str = config_field(
        "rfid-fa-vae",
        help="rFID preprocessing: torch-fidelity's (the FA-VAE README's) or pytorch-fid's "
        "(upstream LightningDiT's); rfid-seed is a former name of rfid-fa-vae",
        choices=RFID_PROTOCOLS,
    )
    recon_protocol: str = config_field(
        "fa-vae",
        help="crop, posterior sample or mode, clamping (fa-vae: as the FA-VAE author's "
        "evaluation; seed is a former name of fa-vae)",
        choices=(*RECON_PROTOCOLS, *RECON_PROTOCOL_ALIASES),
    )
    seed: int = config_field(0, help="seed of the posterior samples and random:PRESET weights")

    def __post_init__(self) -> None:
        if not self.tokenizers:
            raise ValueError("give at least one --tokenizer")
        if self.num_images < 1 or self.batch_size < 1 or self.image_size < 2:
            raise ValueError("num_images and batch_size must be positive, image_size at least 2")
        self.recon_protocol = get_recon_protocol(self.recon_protocol).name
        self.rfid_protocol = get_protocol(self.rfid_protocol).name
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be non-negative, got {self.num_workers}")
        if self.data != "embedded" and not Path(self.data).is_dir():
            raise FileNotFoundError(f"data root {self.data} does not exist or is not a directory")


def run_recon_eval(settings: ReconEvalSettings) -> list[dict[str, Any]]:
    """Evaluate every tokenizer on the same images; rank 0 writes CSV, JSON and markdown."""
    ctx = init_distributed()
    recon_protocol = get_recon_protocol(settings.recon_protocol)
    dataset = open_dataset(
        settings.data, settings.split, settings.image_size, crop=recon_protocol.crop
    )
    if len(dataset) < settings.num_images:
        raise ValueError(
            f"{settings.data} ({settings.split}) has {len(dataset)} images at "
            f"{settings.image_size} px, fewer than --num-images {settings.num_images}"
        )
    indices = list(range(settings.num_images))[ctx.rank :: ctx.world_size]
    networks = load_metric_networks(
        lpips_trunk=settings.lpips_trunk,
        inception_weights=settings.inception_weights,
        rfid_protocol=settings.rfid_protocol,
        device=ctx.device,
    )
    rows = []
    for spec in settings.tokenizers:
        tokenizer = load_tokenizer(spec, seed=settings.seed)
        logger.info("evaluating %s (%s)", tokenizer.name, tokenizer.source)
        row = evaluate_tokenizer(
            tokenizer,
            dataset,
            indices,
            networks,
            batch_size=settings.batch_size,
            device=ctx.device,
            protocol=recon_protocol,
            seed=settings.seed,
            num_workers=settings.num_workers,
        )
        rows.append(row)
        tokenizer.model.to("cpu")
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    if ctx.is_main:
        data = {**asdict(settings), "num_images": settings.num_images}
        protocol = table_protocol(networks, recon_protocol, data)
        paths = write_tables(settings.out_dir, rows, protocol)
        print(markdown_table(rows, protocol), end="")
        logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return rows


class ReconEvalJob(submitit.helpers.Checkpointable):
    """``run_recon_eval`` as a job; a requeued job simply measures again from the start."""

    def __init__(self, settings: ReconEvalSettings) -> None:
        self.settings = settings

    def __call__(self) -> list[dict[str, Any]]:
        try:
            return run_recon_eval(self.settings)
        finally:
            cleanup()
