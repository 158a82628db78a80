"""The generation evaluation as a submittable job (local, submitit debug, or SLURM).

``freqlat-eval generate`` samples every generator at every ``--cfg-scale``, writes the samples
as ADM sample batches, measures them against the reference batch and writes the generation
table. Every input is resolved and checked (specs, tokenizers, latent spaces, the reference
file, sample folders made with other settings) before the first sample is drawn; a requeued
job resumes from the shards already on disk.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
import torch

from freqlat.core import cleanup, config_field, init_distributed
from freqlat.eval.generate import INCEPTION_COLUMNS, RankSync, draw_samples, measure_samples
from freqlat.eval.generation_table import (
    generation_markdown,
    write_generation_tables,
    write_spectra,
)
from freqlat.eval.generator_specs import (
    GeneratorOptions,
    GeneratorSpec,
    LoadedGenerator,
    load_generator,
    resolve_generator,
)
from freqlat.eval.reference_batch import (
    PROTOCOL,
    ReferenceBatch,
    check_reference_file,
    default_stats_cache,
    prepare_reference,
)
from freqlat.eval.sample_store import SampleStore
from freqlat.eval.sampling import (
    LABEL_MODES,
    LABEL_RULES,
    QUANTIZATION_RULES,
    QUANTIZATIONS,
    UPSTREAM_LABELS,
    UPSTREAM_QUANTIZATION,
    describe_sampler,
    is_guided,
    resolve_choice,
    sampler_settings,
)
from freqlat.metrics import HIGH_FREQUENCY_DEFINITION, InceptionFeatures, get_protocol
from freqlat.tokenizers import unique_names

logger = logging.getLogger("freqlat.eval")

SAMPLE_FORMAT = 1
"""Version of the sample folders' layout, recorded in their manifest."""


@dataclass
class GenerateEvalSettings:
    """What ``freqlat-eval generate`` samples, how, and what it measures the samples against."""

    generators: list[str] = config_field(
        help="generators to sample: a freqlat-train generator run directory (RUN:raw for its "
        "raw weights), a save_pretrained directory, or PRESET=CHECKPOINT of a released model",
        flag="--generator",
        metavar="SPEC",
    )
    cfg_scales: list[float] = config_field(
        help="guidance settings, one table row each: the CFG scale of LightningDiT and LDM "
        "(1 = unguided), VAR's cfg (0 = unguided)",
        flag="--cfg-scale",
        metavar="SCALE",
    )
    tokenizer: str | None = config_field(
        None,
        help="tokenizer spec that decodes the latents (none: the one each run was trained on; "
        "required for released checkpoints)",
        metavar="SPEC",
    )
    force_tokenizer: bool = config_field(
        False, help="decode with --tokenizer even where a run was trained on another one"
    )
    latent_stats: str | None = config_field(
        None,
        help="latent statistics of a released checkpoint: upstream's latents_stats.pt or a "
        "latent_space.json",
        metavar="FILE",
    )
    epochs: list[float] = config_field(
        default_factory=list,
        help="training epochs of each generator, for the table (not given: what the run's "
        "config.json or the release's file name says)",
    )
    reference: str | None = config_field(
        None,
        help="ADM reference batch, e.g. VIRTUAL_imagenet256_labeled.npz (none: the metrics "
        "that need it read missing)",
        metavar="NPZ",
    )
    num_samples: int = config_field(50_000, help="samples per generator and guidance setting")
    seed: int = config_field(0, help="sample i's noise and label come from (seed, i)")
    labels: str = config_field(
        "upstream",
        help="class labels: uniform random, balanced (i mod classes: 50 per class for 50k), or "
        "upstream (LightningDiT and LDM uniform, VAR balanced)",
        choices=LABEL_MODES,
    )
    quantization: str = config_field(
        "upstream",
        help="float to uint8: adm ((x+1)*127.5 rounded down, guided-diffusion), lightningdit "
        "(127.5x+128 rounded down = rounded half up), upstream (LightningDiT: lightningdit, "
        "LDM and VAR: adm)",
        choices=QUANTIZATIONS,
    )
    steps: int = config_field(250, help="LightningDiT: grid points of the ODE (steps - 1 updates)")
    timestep_shift: float = config_field(0.3, help="LightningDiT: timestep shift s (1 = none)")
    cfg_interval_start: float = config_field(
        0.1, help="LightningDiT: guidance only where the shifted t is at least this"
    )
    guidance_channels: int | None = config_field(
        3, help="LightningDiT: guide the first N latent channels (upstream: 3; none: all)"
    )
    sampling_method: str = config_field(
        "euler", help="LightningDiT: ODE integrator", choices=("euler", "heun")
    )
    ldm_sampler: str = config_field("ddim", help="LDM: sampler", choices=("ddim", "ddpm"))
    ddim_steps: int = config_field(250, help="LDM: DDIM steps S (upstream's uniform grid)")
    ddim_eta: float = config_field(0.0, help="LDM: DDIM eta (0 = deterministic)")
    top_k: int = config_field(900, help="VAR: top-k filtering (0 = off)")
    top_p: float = config_field(0.96, help="VAR: top-p filtering (0 = off)")
    batch_size: int = config_field(32, help="samples per batch and process")
    shard_size: int = config_field(
        1000, help="samples per shard on disk (the unit that a requeued job does not redo)"
    )
    inception_weights: str | None = config_field(
        None, help="FID Inception weights file (none: the torch hub cache)"
    )
    stats_cache: str | None = config_field(
        None,
        help="where the reference batch's Inception features and spectrum are cached (none: "
        "$FREQLAT_CACHE/reference_stats)",
        metavar="DIR",
    )
    png: bool = config_field(False, help="also write every sample as a PNG")
    tf32: bool = config_field(
        False, help="TF32 matmuls on GPU (faster; upstream LightningDiT samples with TF32)"
    )
    out_dir: str = config_field(
        "results/generate",
        help="directory for generation.csv/json/md, spectra and samples/",
        flag="--out",
        metavar="DIR",
    )

    def __post_init__(self) -> None:
        if not self.generators:
            raise ValueError("give at least one --generator")
        if not self.cfg_scales:
            raise ValueError("give at least one --cfg-scale")
        if len(set(self.cfg_scales)) != len(self.cfg_scales):
            raise ValueError(f"--cfg-scale lists a value twice: {self.cfg_scales}")
        positive = ("num_samples", "batch_size", "shard_size", "ddim_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.steps < 2:
            raise ValueError(f"steps counts ODE grid points and must be >= 2, got {self.steps}")
        if self.timestep_shift <= 0 or self.ddim_eta < 0 or self.top_k < 0:
            raise ValueError("timestep_shift must be positive, ddim_eta and top_k non-negative")
        if not 0 <= self.top_p <= 1 or not 0 <= self.cfg_interval_start <= 1:
            raise ValueError("top_p and cfg_interval_start must lie in [0, 1]")
        if self.guidance_channels is not None and self.guidance_channels < 1:
            raise ValueError(f"guidance_channels must be positive, got {self.guidance_channels}")
        if self.epochs and len(self.epochs) != len(self.generators):
            raise ValueError(
                f"give one --epochs value per --generator ({len(self.generators)}), "
                f"got {len(self.epochs)}"
            )
        if self.reference is not None:
            check_reference_file(self.reference)
        for name in ("latent_stats", "inception_weights"):
            value = getattr(self, name)
            if value is not None and not Path(value).exists():
                raise FileNotFoundError(f"--{name.replace('_', '-')} {value} does not exist")
        self.resolve_generators()  # every spec checked before a job is submitted

    def resolve_generators(self) -> list[GeneratorSpec]:
        """Every ``--generator`` resolved (no weights read), in order."""
        options = GeneratorOptions(
            self.tokenizer, self.force_tokenizer, self.latent_stats, self.seed
        )
        return [resolve_generator(spec, options) for spec in self.generators]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "generator"


@dataclass
class Cell:
    """One row of the table: a generator at one guidance setting, and where its samples go."""

    generator: LoadedGenerator
    guidance: float
    sampler: dict[str, Any]
    labels: str
    quantization: str
    store: SampleStore


def plan_cells(
    settings: GenerateEvalSettings, generators: list[LoadedGenerator], device: torch.device
) -> list[Cell]:
    """Every (generator, guidance) cell with its sample folder, each folder checked against
    the settings (an error if it holds samples made with others)."""
    cells = []
    for loaded in generators:
        fingerprint = loaded.fingerprint()
        labels = resolve_choice(settings.labels, loaded.family, UPSTREAM_LABELS)
        quantization = resolve_choice(settings.quantization, loaded.family, UPSTREAM_QUANTIZATION)
        for guidance in settings.cfg_scales:
            sampler = sampler_settings(loaded.family, settings, guidance)
            manifest = {
                "format": SAMPLE_FORMAT,
                "generator": loaded.name,
                "family": loaded.family,
                "weights_sha256": fingerprint,
                "tokenizer": loaded.tokenizer_spec,
                "sampler": sampler,
                "labels": labels,
                "num_classes": loaded.num_classes,
                "quantization": quantization,
                "seed": settings.seed,
                "num_samples": settings.num_samples,
                "shard_size": settings.shard_size,
                "device": device.type,
                "tf32": settings.tf32 and device.type == "cuda",
            }
            folder = Path(settings.out_dir) / "samples" / _slug(loaded.name) / f"cfg-{guidance:g}"
            store = SampleStore(folder, manifest)
            store.check()
            cells.append(Cell(loaded, guidance, sampler, labels, quantization, store))
    return cells


def _load_inception(settings: GenerateEvalSettings, device: torch.device):
    try:
        extractor = InceptionFeatures(
            weights_path=settings.inception_weights, resize=get_protocol(PROTOCOL).resize
        )
        return extractor.to(device), None
    except FileNotFoundError as exc:
        logger.warning("FID, sFID, IS, precision and recall will read missing: %s", exc)
        return None, str(exc)


def _row(cell: Cell, values: dict, missing: dict, settings: GenerateEvalSettings) -> dict:
    loaded = cell.generator
    return {
        "generator": loaded.name,
        "tokenizer": loaded.tokenizer.name,
        "epochs": loaded.epochs,
        "guidance": cell.guidance,
        "guided": is_guided(loaded.family, cell.sampler),
        **values,
        "num_samples": cell.store.num_samples,
        "image_size": list(cell.store.image_shape()[:2]),
        "sampler": cell.sampler,
        "labels": cell.labels,
        "quantization": cell.quantization,
        "seed": settings.seed,
        "samples": str(cell.store.npz_path),
        "png": str(cell.store.png_dir) if settings.png else None,
        "source": loaded.source,
        "tokenizer_spec": loaded.tokenizer_spec,
        "tokenizer_source": loaded.tokenizer.source,
        "latent_space": {
            "normalization": loaded.latent_space.normalization,
            "source": loaded.latent_space.source,
        },
        "weights_sha256": cell.store.manifest["weights_sha256"],
        "notes": list(loaded.notes),
        "missing": missing,
    }


def generation_protocol(
    cells: list[Cell], reference: ReferenceBatch | None, settings: GenerateEvalSettings
) -> dict[str, str]:
    """How every column and every row was made."""
    adm = get_protocol(PROTOCOL)
    protocol = {
        "FID, sFID, IS, Precision, Recall": f"{adm.name}: {adm.description}",
        "HF ratio": HIGH_FREQUENCY_DEFINITION,
        "reference": reference.describe() if reference else "none given",
        "samples": (
            f"{settings.num_samples} per row; sample i's noise, label and every random draw "
            f"come from (seed {settings.seed}, i), so they do not depend on the batch size or "
            "the number of processes"
        ),
        "labels": "; ".join(f"{m}: {LABEL_RULES[m]}" for m in sorted({c.labels for c in cells})),
        "uint8": "; ".join(
            f"{q}: {QUANTIZATION_RULES[q]}" for q in sorted({c.quantization for c in cells})
        ),
    }
    for cell in cells:
        key = f"sampler of {cell.generator.name} at {cell.guidance:g}"
        protocol[key] = describe_sampler(cell.sampler)
    return protocol


def run_generate_eval(
    settings: GenerateEvalSettings, use_cuda: bool | None = None
) -> list[dict[str, Any]]:
    """Sample, measure and tabulate every (generator, guidance) cell; rank 0 writes the tables.

    ``use_cuda`` is :attr:`freqlat.core.LaunchOptions.use_cuda` (False: stay on the CPU).
    """
    ctx = init_distributed(use_cuda=use_cuda)
    if ctx.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
    sync = RankSync(ctx)
    generators = [load_generator(spec, settings.seed) for spec in settings.resolve_generators()]
    for loaded, name in zip(generators, unique_names([g.name for g in generators]), strict=True):
        loaded.name = name
    for loaded, epochs in zip(generators, settings.epochs, strict=False):
        loaded.epochs = epochs
    cells = plan_cells(settings, generators, ctx.device)
    extractor, inception_missing = _load_inception(settings, ctx.device)
    reference = None
    if ctx.is_main and settings.reference is not None:
        reference = prepare_reference(
            settings.reference,
            extractor,
            cache_dir=settings.stats_cache or default_stats_cache(),
            batch_size=settings.batch_size,
            device=ctx.device,
        )
    rows, curves = [], {}
    for loaded in generators:
        loaded.to(ctx.device)
        for cell in (c for c in cells if c.generator is loaded):
            draw_samples(
                loaded,
                cell.store,
                cell.sampler,
                labels=cell.labels,
                quantization=cell.quantization,
                seed=settings.seed,
                batch_size=settings.batch_size,
                ctx=ctx,
                sync=sync,
            )
            values, missing, spectrum = measure_samples(
                cell.store,
                extractor,
                reference,
                batch_size=settings.batch_size,
                ctx=ctx,
                write_png=settings.png,
            )
            if ctx.is_main:
                if inception_missing:
                    missing.update(dict.fromkeys(INCEPTION_COLUMNS, inception_missing))
                rows.append(_row(cell, values, missing, settings))
                curves[f"{loaded.name} at {cell.guidance:g}"] = (
                    spectrum.frequencies,
                    spectrum.compute(),
                )
        loaded.to("cpu")
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    if ctx.is_main:
        protocol = generation_protocol(cells, reference, settings)
        paths = write_generation_tables(settings.out_dir, rows, protocol)
        if reference is not None and reference.spectrum is not None:
            curves["reference"] = (reference.spectrum.frequencies, reference.spectrum.compute())
        paths.update(write_spectra(settings.out_dir, curves))
        print(generation_markdown(rows, protocol), end="")
        logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return rows


class GenerateEvalJob(submitit.helpers.Checkpointable):
    """``run_generate_eval`` as a job; a requeued job resumes from the samples on disk."""

    def __init__(self, settings: GenerateEvalSettings, use_cuda: bool | None = None) -> None:
        self.settings = settings
        self.use_cuda = use_cuda

    def __call__(self) -> list[dict[str, Any]]:
        try:
            return run_generate_eval(self.settings, self.use_cuda)
        finally:
            cleanup()
