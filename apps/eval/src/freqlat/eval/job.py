"""The reconstruction evaluation as a submittable job (local, submitit debug, or SLURM)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import submitit
import torch

from freqlat.core import cleanup, init_distributed, open_dataset
from freqlat.eval.recon import (
    evaluate_tokenizer,
    get_recon_protocol,
    load_metric_networks,
    table_protocol,
)
from freqlat.eval.sources import load_tokenizer
from freqlat.eval.table import markdown_table, write_tables

logger = logging.getLogger("freqlat.eval")


@dataclass
class ReconEvalSettings:
    """What ``freqlat-eval recon`` measures and where it writes the table."""

    tokenizers: list[str]
    data: str = "embedded"
    split: str = "val"
    num_images: int = 50_000
    image_size: int = 256
    batch_size: int = 32
    num_workers: int = 4
    out_dir: str = "results/recon"
    lpips_trunk: str | None = None
    inception_weights: str | None = None
    rfid_protocol: str = "rfid-seed"
    recon_protocol: str = "seed"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.tokenizers:
            raise ValueError("give at least one --tokenizer")
        if self.num_images < 1 or self.batch_size < 1 or self.image_size < 2:
            raise ValueError("num_images and batch_size must be positive, image_size at least 2")
        get_recon_protocol(self.recon_protocol)
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
