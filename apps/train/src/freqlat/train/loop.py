"""The tokenizer training loop: resume, alternate autoencoder/discriminator steps, log, checkpoint.

One step: the tokenizer's forward (under DDP when there are several processes), the loss's
autoencoder step, a clipped optimiser step over the tokenizer and the loss's own parameters;
then, once the GAN is on, the discriminator step with its own optimiser; then the EMA. The loss
is driven through its ``autoencoder_step`` / ``discriminator_step`` methods rather than
``forward``, so DDP cannot wrap it: its few parameters (logvar, VF projection, discriminators)
start from rank 0's values and have their gradients averaged over ranks explicitly.

Precision, optimiser steps, throughput and checkpoints come from :mod:`freqlat.core.training`.
A checkpoint holds everything a restart needs (model, EMA, loss state, both optimisers, both
grad scalers, the data position and every RNG; the LR is a function of the step), so a run
killed at any point and restarted from its latest checkpoint continues bit for bit as if it had
never stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.utils import make_grid, save_image

from freqlat.core import (
    EMA,
    DistributedContext,
    MetricWriter,
    PreemptionGuard,
    RunCheckpoints,
    ThroughputMeter,
    autocast,
    broadcast_from_main,
    grad_scaler,
    lr_factor,
    optimizer_step,
    progress,
    seed_everything,
    set_learning_rate,
    setup_logging,
    wrap_ddp,
)
from freqlat.train.components import (
    LossState,
    build_loader,
    build_model,
    build_optimizer,
    build_training_loss,
    grid_batch,
)
from freqlat.train.config import TokenizerTrainConfig

logger = logging.getLogger("freqlat.train")

CHECKPOINT_DIR = "checkpoints"
GRID_DIR = "grids"
EXPORT_DIR = "export"


@torch.no_grad()
def save_grid(
    path: Path, images: torch.Tensor, models: list[nn.Module], config: TokenizerTrainConfig
) -> torch.Tensor:
    """Write originals above each model's reconstruction (posterior mode) as one PNG.

    Returns the 3 x H x W grid in [-1, 1] (for tensorboard).
    """
    device = next(models[0].parameters()).device
    x = images.to(device)
    rows = [x]
    for model in models:
        was_training = model.training
        model.eval()
        with autocast(config.precision, device):
            rows.append(model(x, sample=False).recon.float().clamp(-1, 1))
        model.train(was_training)
    grid = make_grid(torch.cat(rows).cpu(), nrow=x.shape[0], padding=2, pad_value=-1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((grid + 1) / 2, path)
    return grid


def train_tokenizer(
    config: TokenizerTrainConfig, ctx: DistributedContext, guard: PreemptionGuard | None = None
) -> dict[str, Any]:
    """Train (or resume) the run of ``config`` to ``config.steps``; returns a summary dict.

    Every start resumes from ``<run_dir>/checkpoints``' latest complete checkpoint. With a
    ``guard`` inside a submitit job, a timeout/preemption signal makes the loop checkpoint at
    the next step boundary and requeue.
    """
    run_dir = Path(config.run_dir)
    setup_logging(run_dir / "train.log")
    seed_everything(config.seed, ctx.rank)
    device = ctx.device

    model = build_model(config).to(device)
    loss = build_training_loss(config, model, device)
    # Ranks are seeded apart, so the loss's fresh weights differ between them; DDP only
    # synchronises the model. (A resumed run loads rank 0's saved state on every rank.)
    broadcast_from_main(loss.trainable_state_dict().values())
    ema = EMA(model, decay=config.ema_decay)
    ae_params = list(model.parameters()) + loss.autoencoder_parameters()
    disc_params = loss.discriminator_parameters()
    disc_lr = config.lr if config.disc_lr is None else config.disc_lr
    ae_opt = build_optimizer(ae_params, config.lr, config)
    disc_opt = build_optimizer(disc_params, disc_lr, config)
    ae_scaler = grad_scaler(config.precision, device)
    disc_scaler = grad_scaler(config.precision, device)
    loader = build_loader(config, ctx)
    checkpoints = RunCheckpoints(
        run_dir / CHECKPOINT_DIR,
        weights={"model": model, "ema": ema, "loss": LossState(loss)},
        states={
            "ae_optimizer": ae_opt,
            "disc_optimizer": disc_opt,
            "ae_scaler": ae_scaler,
            "disc_scaler": disc_scaler,
            "data": loader,
        },
        keep_last=config.keep_checkpoints,
    )
    step = checkpoints.resume()

    trained = wrap_ddp(model, ctx, find_unused_parameters=config.find_unused_parameters)
    model.train()
    loss.train()
    writer = MetricWriter(run_dir / "tensorboard" if ctx.is_main else None)
    grid_images = grid_batch(config) if ctx.is_main else None
    terms_logged: dict[str, float] = {}
    logger.info(
        "training %s on %s: steps %d/%d, %d process(es), batch %d per process, %s",
        config.preset,
        config.data,
        step,
        config.steps,
        ctx.world_size,
        config.batch_size,
        config.precision,
    )
    bar = progress(total=config.steps, initial=step, desc=config.preset)
    stream = iter(loader)
    throughput = ThroughputMeter(config.batch_size)

    def metadata() -> dict[str, Any]:
        return {"config": config.to_dict(), "terms": terms_logged}

    def close() -> None:
        writer.close()
        bar.close()

    while step < config.steps:
        checkpoints.stop_if_requested(guard, step, device, metadata, before_exit=close)
        with throughput.waiting():
            images, _ = next(stream)
            images = images.to(device, non_blocking=True)
        factor = lr_factor(
            step,
            steps=config.steps,
            warmup=config.warmup_steps,
            schedule=config.lr_schedule,
            min_ratio=config.min_lr_ratio,
        )
        lr = set_learning_rate(ae_opt, config.lr * factor)
        set_learning_rate(disc_opt, disc_lr * factor)
        with autocast(config.precision, device):
            output = trained(images)
            terms = loss.autoencoder_step(model, images, output, step)
        grad_norm = optimizer_step(
            terms["loss"],
            ae_opt,
            ae_scaler,
            ae_params,
            shared=loss.autoencoder_parameters(),
            grad_clip=config.grad_clip,
        )
        if loss.discriminator_active(step):
            with autocast(config.precision, device):
                disc_terms = loss.discriminator_step(images, output, step)
            optimizer_step(
                disc_terms["loss"],
                disc_opt,
                disc_scaler,
                disc_params,
                shared=disc_params,
                grad_clip=config.grad_clip,
            )
            terms.update({f"disc/{k}": v for k, v in disc_terms.items()})
        ema.update(model)
        step += 1
        throughput.step_done()
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            terms_logged = {k: float(v.detach()) for k, v in terms.items()}
            terms_logged["lr"] = lr
            terms_logged.update(throughput.interval())
            if grad_norm is not None:
                terms_logged["grad_norm"] = float(grad_norm)
            writer.scalars({f"train/{k}": v for k, v in terms_logged.items()}, step)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(terms_logged.items()))
            logger.info("step %d: %s", step, shown)
            bar.set_postfix(loss=f"{terms_logged['loss']:.4g}")
        if grid_images is not None and (step % config.grid_every == 0 or step == config.steps):
            grid_path = run_dir / GRID_DIR / f"step_{step:09d}.png"
            grid = save_grid(grid_path, grid_images, [model, ema.module], config)
            writer.image("recon/grid", grid, step)
        if step % config.checkpoint_every == 0 or step == config.steps:
            checkpoints.save(step, metadata())
    close()
    if ctx.is_main:
        export(run_dir, model, ema)
    return {
        "step": step,
        "run_dir": str(run_dir),
        "terms": terms_logged,
        "throughput": throughput.total(),
    }


def export(run_dir: Path, model: nn.Module, ema: EMA) -> None:
    """Save the final weights for ``freqlat-eval``: ``export/model`` and ``export/ema``."""
    model.save_pretrained(run_dir / EXPORT_DIR / "model")
    ema.module.save_pretrained(run_dir / EXPORT_DIR / "ema")
    logger.info("exported %s and %s", run_dir / EXPORT_DIR / "model", run_dir / EXPORT_DIR / "ema")
