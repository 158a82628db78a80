"""The tokenizer training loop: resume, alternate generator/discriminator steps, log, checkpoint.

One step: the tokenizer's forward (under DDP when there are several processes), the loss's
generator step, a clipped optimiser step over the tokenizer and the loss's own parameters; then,
once the GAN is on, the discriminator step with its own optimiser; then the EMA. The loss is driven through its ``generator_step`` / ``discriminator_step`` methods rather
than ``forward``, so DDP cannot wrap it: its few parameters (logvar, VF projection,
discriminators) start from rank 0's values and have their gradients averaged over ranks
explicitly.

A checkpoint holds everything a restart needs (model, EMA, loss state, both optimisers, both
grad scalers, the data position and every RNG; the LR is a function of the step), so a run killed at any point
and restarted from its latest checkpoint continues bit for bit as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torchvision.utils import make_grid, save_image

from freqlat.core import (
    EMA,
    DistributedContext,
    MetricWriter,
    PreemptionGuard,
    latest_checkpoint,
    load_checkpoint,
    progress,
    save_checkpoint,
    seed_everything,
    setup_logging,
)
from freqlat.core.distributed import broadcast_from_main, is_distributed
from freqlat.train.components import (
    LossState,
    build_loader,
    build_model,
    build_optimizer,
    build_training_loss,
    grid_batch,
    set_learning_rate,
)
from freqlat.train.config import TokenizerTrainConfig

logger = logging.getLogger("freqlat.train")

CHECKPOINT_DIR = "checkpoints"
GRID_DIR = "grids"
EXPORT_DIR = "export"


def all_reduce_gradients(params: Iterable[nn.Parameter]) -> None:
    """Average the gradients of ``params`` over ranks (no-op in a single process)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def _autocast(config: TokenizerTrainConfig, device: torch.device):
    if config.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    params: list[nn.Parameter],
    shared: list[nn.Parameter],
    grad_clip: float,
) -> torch.Tensor | None:
    """Backward, average ``shared`` grads over ranks, clip, step. Returns the grad norm."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    all_reduce_gradients(shared)
    norm = None
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return norm


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
        with _autocast(config, device):
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
    fp16 = config.precision == "fp16"
    ae_scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    disc_scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    loader = build_loader(config, ctx)

    weights = {"model": model, "ema": ema, "loss": LossState(loss)}
    states = {
        "ae_optimizer": ae_opt,
        "disc_optimizer": disc_opt,
        "ae_scaler": ae_scaler,
        "disc_scaler": disc_scaler,
        "data": loader,
    }
    checkpoints = run_dir / CHECKPOINT_DIR
    step = 0
    latest = latest_checkpoint(checkpoints)
    if latest is not None:
        step = load_checkpoint(latest, weights=weights, states=states).step
        logger.info("resumed from %s at step %d", latest, step)

    def checkpoint(terms: dict[str, float]) -> None:
        save_checkpoint(
            checkpoints,
            step,
            weights=weights,
            states=states,
            metadata={"config": config.to_dict(), "terms": terms},
            keep_last=config.keep_checkpoints,
        )

    if ctx.world_size > 1:
        ddp_kwargs: dict[str, Any] = {"find_unused_parameters": config.find_unused_parameters}
        if device.type == "cuda":
            ddp_kwargs["device_ids"] = [device]
        trained: nn.Module = DistributedDataParallel(model, **ddp_kwargs)
    else:
        trained = model
    model.train()
    loss.train()
    writer = MetricWriter(run_dir / "tensorboard" if ctx.is_main else None)
    grid_images = grid_batch(config) if ctx.is_main else None
    terms_logged: dict[str, float] = {}
    saved_at = step
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
    # Throughput: wall time and time blocked on the data loader, from the end of the first step
    # of this start (which pays for start-up); per logging interval and for the whole start.
    throughput = _Throughput(config.batch_size)
    while step < config.steps:
        if guard is not None and guard.should_stop(device):
            if saved_at != step:
                checkpoint(terms_logged)
            writer.close()
            bar.close()
            guard.requeue()
        waited = time.perf_counter()
        images, _ = next(stream)
        images = images.to(device, non_blocking=True)
        throughput.data_wait(time.perf_counter() - waited)
        lr = set_learning_rate(ae_opt, config.lr, step, config)
        set_learning_rate(disc_opt, disc_lr, step, config)
        with _autocast(config, device):
            output = trained(images)
            terms = loss.generator_step(model, images, output, step)
        grad_norm = _optimizer_step(
            terms["loss"],
            ae_opt,
            ae_scaler,
            ae_params,
            loss.autoencoder_parameters(),
            config.grad_clip,
        )
        if loss.discriminator_active(step):
            with _autocast(config, device):
                disc_terms = loss.discriminator_step(images, output, step)
            _optimizer_step(
                disc_terms["loss"],
                disc_opt,
                disc_scaler,
                disc_params,
                disc_params,
                config.grad_clip,
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
            grid = save_grid(
                run_dir / GRID_DIR / f"step_{step:09d}.png",
                grid_images,
                [model, ema.module],
                config,
            )
            writer.image("recon/grid", grid, step)
        if step % config.checkpoint_every == 0 or step == config.steps:
            checkpoint(terms_logged)
            saved_at = step
    bar.close()
    writer.close()
    if ctx.is_main:
        export(run_dir, model, ema)
    return {
        "step": step,
        "run_dir": str(run_dir),
        "terms": terms_logged,
        "throughput": throughput.total(),
    }


class _Throughput:
    """Images/s per process and the share of wall time spent waiting for data.

    Counting starts when the first step of a start has finished, so model building, resuming
    and the first (warm-up) step are left out.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.started: float | None = None
        self.steps = 0
        self.waited = 0.0
        self.mark = (0, 0.0, 0.0)  # steps, waited, time at the last interval()

    def data_wait(self, seconds: float) -> None:
        if self.started is not None:
            self.waited += seconds

    def step_done(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()
            self.mark = (0, 0.0, self.started)
        else:
            self.steps += 1

    def _since(self, steps: int, waited: float, since: float) -> dict[str, float]:
        elapsed = time.perf_counter() - since
        if self.steps == steps or elapsed <= 0:
            return {}
        return {
            "time/images_per_s": (self.steps - steps) * self.batch_size / elapsed,
            "time/data_wait_fraction": (self.waited - waited) / elapsed,
        }

    def interval(self) -> dict[str, float]:
        """Throughput since the previous call (empty before the first counted step)."""
        if self.started is None:
            return {}
        values = self._since(*self.mark)
        self.mark = (self.steps, self.waited, time.perf_counter())
        return values

    def total(self) -> dict[str, float]:
        """Throughput over every counted step of this start."""
        return {} if self.started is None else self._since(0, 0.0, self.started)


def export(run_dir: Path, model: nn.Module, ema: EMA) -> None:
    """Save the final weights for ``freqlat-eval``: ``export/model`` and ``export/ema``."""
    model.save_pretrained(run_dir / EXPORT_DIR / "model")
    ema.module.save_pretrained(run_dir / EXPORT_DIR / "ema")
    logger.info("exported %s and %s", run_dir / EXPORT_DIR / "model", run_dir / EXPORT_DIR / "ema")
