"""The generator training loop: resume, one objective step per batch of cached latents, EMA, log.

One step: a batch of cached latents (normalised with the run's latent space) or token maps, the
family's objective (:func:`freqlat.generators.training_objective`: rectified flow, DDPM or
next-scale cross-entropy) on the DDP-wrapped model, one AdamW step (clipped if asked), the EMA.
The EMA starts as a copy of the initial weights, as hustvl/LightningDiT ``train.py`` does
(``update_ema(ema, model, decay=0)`` before the first step).

Precision, optimiser steps, throughput and checkpoints come from :mod:`freqlat.core.training`.
A checkpoint holds everything a restart needs (model, EMA, optimiser, grad scaler, the data
position and every rank's RNG; LR and weight decay are functions of the step), so a run killed
at any point and restarted continues bit for bit as if it had never stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqlat.core import (
    EMA,
    DistributedContext,
    MetricWriter,
    PreemptionGuard,
    ResumableLoader,
    RunCheckpoints,
    ThroughputMeter,
    all_reduce_mean,
    annealed_weight_decay,
    autocast,
    grad_scaler,
    lr_factor,
    optimizer_step,
    progress,
    save_image_grid,
    seed_everything,
    set_learning_rate,
    setup_logging,
    wrap_ddp,
)
from freqlat.generators import LatentDataset, split_tokens, training_objective
from freqlat.generators.var_training import decays
from freqlat.train.generator_config import GeneratorTrainConfig
from freqlat.train.generator_model import (
    build_generator,
    check_cache,
    claim_latents,
    export_run,
    load_cache_tokenizer,
    run_latent_space,
    sample_grid_images,
)

logger = logging.getLogger("freqlat.train")


def build_optimizer(config: GeneratorTrainConfig, model: nn.Module) -> torch.optim.AdamW:
    """AdamW with the run's betas. VAR decays its weight matrices only (FoundationVision/VAR
    ``train.py``'s groups, :func:`freqlat.generators.var_training.decays`); the other families
    decay every parameter, as ``torch.optim.AdamW`` does."""
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if config.family == "next-scale":
        groups = [
            {"params": [p for n, p in params if decays(n, p)], "weight_decay": config.weight_decay},
            {"params": [p for n, p in params if not decays(n, p)], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": [p for _, p in params], "weight_decay": config.weight_decay}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def apply_schedule(
    optimizer: torch.optim.Optimizer, config: GeneratorTrainConfig, step: int
) -> float:
    """Set the LR of ``step`` (``lr_schedule`` after the warm-up) on every group, and anneal the
    decayed group's weight decay (the first group of :func:`build_optimizer`) to
    ``final_weight_decay`` if set; returns the LR."""
    schedule = {"warmup": config.warmup_steps, "schedule": config.lr_schedule}
    factor = lr_factor(step, steps=config.steps, min_ratio=config.min_lr_ratio, **schedule)
    if config.final_weight_decay is not None:
        optimizer.param_groups[0]["weight_decay"] = annealed_weight_decay(
            step, steps=config.steps, start=config.weight_decay, end=config.final_weight_decay
        )
    return set_learning_rate(optimizer, config.lr * factor)


def per_process_batch(config: GeneratorTrainConfig, world_size: int) -> int:
    """The global batch split over ``world_size`` processes (ValueError if it does not divide)."""
    if config.batch_size % world_size:
        raise ValueError(
            f"the global batch_size {config.batch_size} does not split evenly over "
            f"{world_size} processes"
        )
    return config.batch_size // world_size


def train_generator(
    config: GeneratorTrainConfig, ctx: DistributedContext, guard: PreemptionGuard | None = None
) -> dict[str, Any]:
    """Run generator training to ``config.steps`` optimiser steps and export; returns a summary
    (final step, run directory, last logged terms, throughput).

    A start picks up the newest complete checkpoint of the run directory, if any. Given the
    submitit ``guard``, a preemption or timeout signal is honoured between two steps: the loop
    saves (unless that step is saved) and the job requeues.
    """
    run_dir = Path(config.run_dir)
    setup_logging(run_dir / "train.log")
    seed_everything(config.seed, ctx.rank)
    device = ctx.device
    cache = check_cache(config)
    space = run_latent_space(config, cache)
    if ctx.is_main:
        claim_latents(run_dir, space, cache)
    tokens = config.family == "next-scale"
    # VAR builds its inputs with the tokenizer's quantiser; rank 0 decodes the grids with it.
    tokenizer = load_cache_tokenizer(space, device) if tokens or ctx.is_main else None
    model = build_generator(config, cache, tokenizer if tokens else None).to(device)
    objective = training_objective(
        model,
        time_sampling=config.time_sampling,
        cosine_loss=config.cosine_loss,
        label_smoothing=config.label_smoothing,
    )
    ema = EMA(model, decay=config.ema_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(config, model)
    scaler = grad_scaler(config.precision, device)
    batch = per_process_batch(config, ctx.world_size)
    loader = ResumableLoader(
        LatentDataset(cache, tokens=tokens),
        batch,
        seed=config.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        random_flip=config.random_flip,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    checkpoints = RunCheckpoints(
        run_dir / "checkpoints",
        weights={"model": model, "ema": ema},
        states={"optimizer": optimizer, "scaler": scaler, "data": loader},
        keep_last=config.keep_checkpoints,
    )
    step = checkpoints.resume()

    trained = wrap_ddp(model, ctx)  # every rank now holds rank 0's initial weights
    if step == 0:
        ema.update(model)  # the EMA starts from the initial weights, as upstream's
    model.train()
    writer = MetricWriter(run_dir / "tensorboard" if ctx.is_main else None)
    logged: dict[str, float] = {}
    logger.info(
        "training %s (%.2fM parameters) on %s (%d images, %s): steps %d/%d, %d process(es), "
        "batch %d (%d per process), %s",
        config.preset, sum(p.numel() for p in params) / 1e6, cache.directory, len(cache),
        space.tokenizer, step, config.steps, ctx.world_size, config.batch_size, batch,
        config.precision,
    )  # fmt: skip
    bar = progress(total=config.steps, initial=step, desc=config.preset)
    stream = iter(loader)
    throughput = ThroughputMeter(batch)
    patch_sizes = cache.manifest.patch_sizes

    def metadata() -> dict[str, Any]:
        return {"config": config.to_dict(), "terms": logged}

    def close() -> None:
        writer.close()
        bar.close()

    while step < config.steps:
        checkpoints.stop_if_requested(guard, step, device, metadata, before_exit=close)
        with throughput.waiting():
            data, labels = next(stream)
            data = data.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
        data = split_tokens(data, patch_sizes) if tokens else space.normalize(data)
        lr = apply_schedule(optimizer, config, step)
        with autocast(config.precision, device):
            terms = objective.training_losses(trained, data, labels)
        grad_norm = optimizer_step(
            terms["loss"], optimizer, scaler, params, grad_clip=config.grad_clip
        )
        ema.update(model)
        step += 1
        throughput.step_done()
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            scalars = {k: v.detach().float() for k, v in terms.items() if v.numel() == 1}
            logged = {k: float(all_reduce_mean(v)) for k, v in scalars.items()}
            logged["lr"] = lr
            logged.update(throughput.interval())
            if grad_norm is not None:
                logged["grad_norm"] = float(grad_norm)
            writer.scalars({f"train/{k}": v for k, v in logged.items()}, step)
            logger.info(
                "step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in sorted(logged.items()))
            )
            bar.set_postfix(loss=f"{logged['loss']:.4g}")
        if ctx.is_main and (step % config.grid_every == 0 or step == config.steps):
            images = sample_grid_images(
                ema.module, config, space, tokenizer, cache.manifest.num_classes
            )
            path = run_dir / "grids" / f"step_{step:09d}.png"
            grid = save_image_grid(path, images, nrow=images.shape[0])
            writer.image("samples/ema", grid, step)
        if step % config.checkpoint_every == 0 or step == config.steps:
            checkpoints.save(step, metadata())
    close()
    if ctx.is_main:
        export_run(run_dir, model, ema.module, space)
        logger.info("exported %s and %s", run_dir / "export" / "model", run_dir / "export" / "ema")
    return {
        "step": step,
        "run_dir": str(run_dir),
        "terms": logged,
        "throughput": throughput.total(),
    }
