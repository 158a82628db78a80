"""LDM in ``bench_generators.py``: our UNet's training step, eval forward and DDIM sampling against
CompVis/latent-diffusion's, in the same run, on identical weights, after a parity check.

Pairing: our ``LDMUNet`` (every parameter perturbed, so that no zero-initialised output conv
hides a path) is loaded into upstream's ``LatentDiffusion`` built as cin256-v2.yaml builds it
(``official_code.official_latent_diffusion``). Parity, in exact fp32 on the benchmark batch:
eps of the eval forward, the training loss at a fixed (t, noise) (upstream's ``p_losses``), and a
guided DDIM sample (upstream's ``DDIMSampler.sample``). Timed, under each precision:

- ``forward``: eps of the eval forward;
- ``sample``: DDIM (eta 0, the uniform grid) with classifier-free guidance, from fixed x_T;
- ``train``: one step of each side's own training loop on a fixed latent batch: ours is
  ``DDPMObjective`` (random t, noise and 10 % label dropout) under ``freqlat.core.training``'s
  autocast and ``optimizer_step``; upstream's is ``LatentDiffusion.forward`` (random t and noise,
  ``p_losses``) under autocast, then backward and its ``configure_optimizers`` AdamW. Both use
  AdamW at lr 1e-4 with torch's defaults otherwise (cin256-v2.yaml's base_learning_rate).

Upstream's transformer blocks always checkpoint (``BasicTransformerBlock(checkpoint=True)``)
and its checkpoint function fails under bf16 autocast; ``use_autocast_safe_checkpoint`` puts an
autocast-safe recompute in its place (see ``official_code.py``). Ours does not checkpoint
(``LDMConfig.checkpointing`` is off), so it recomputes nothing and holds more activations.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import torch
from benchlib import (
    PARITY_RTOL,
    ComparisonRow,
    Phase,
    TensorDiff,
    TrainingStep,
    comparison_table,
    device_name,
    exact_fp32,
    precision_context,
    tensor_diffs,
    time_phases,
    training_row,
)
from official_code import LDMCode, describe_checkout, official_latent_diffusion, silenced
from torch import Tensor, nn

from freqlat.core.training import autocast, grad_scaler, optimizer_step
from freqlat.generators import DDPMObjective, LDMUNet, create_generator, sample_ddim

# cin256-v2.yaml's base_learning_rate.
LEARNING_RATE = 1e-4
# Upstream's guidance scale for cin256-v2 (scripts/latent_imagenet_diffusion.ipynb: scale 3.0).
CFG_SCALE = 3.0
# Official code on one H100 (issue 12): cin256-v2 training step at batch 64, img/s.
ANCHORS = {"bf16": 213.0, "fp32": 96.0}


@dataclass(frozen=True)
class LDMSide:
    """One implementation as the harness drives it.

    ``forward(x, t, y)`` -> eps; ``loss_at(x0, y, t, noise)`` -> the training loss at fixed t and
    noise (eval mode); ``sample(x_T, y, steps)`` -> x_0 by guided DDIM with upstream's S =
    ``steps`` and guidance scale ``cfg_scale``; ``train_step(x0, y, precision)`` builds one
    training step (its own AdamW).
    """

    model: nn.Module
    forward: Callable[[Tensor, Tensor, Tensor], Tensor]
    loss_at: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    sample: Callable[[Tensor, Tensor, int], Tensor]
    train_step: Callable[[Tensor, Tensor, str], Callable[[], None]]
    cfg_scale: float


def our_side(model: LDMUNet, cfg_scale: float = CFG_SCALE) -> LDMSide:
    """freqlat's UNet, ``DDPMObjective`` and ``sample_ddim``, trained through freqlat.core."""
    objective = DDPMObjective(model.schedule)

    def loss_at(x, y, t, noise):
        return objective.loss_at(model, x, y, t, noise)["loss"]

    def sample(noise, labels, steps):
        return sample_ddim(model, noise, labels, steps=steps, cfg_scale=cfg_scale)

    def train_step(x, y, precision):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
        scaler = grad_scaler(precision, x.device)

        def step():
            with autocast(precision, x.device):
                loss = objective(model, x, y)["loss"]
            optimizer_step(loss, optimizer, scaler, params)

        return step

    return LDMSide(model, model, loss_at, sample, train_step, cfg_scale)


def official_side(code: LDMCode, ldm: nn.Module, cfg_scale: float = CFG_SCALE) -> LDMSide:
    """Upstream's ``LatentDiffusion`` driven as its scripts drive it: ``apply_model`` on the
    learned class conditioning, ``p_losses``, ``DDIMSampler.sample`` with
    ``unconditional_guidance_scale`` and the null class, and its training forward."""
    null_class = ldm.cond_stage_model.embedding.num_embeddings - 1

    def cond(labels):
        return ldm.get_learned_conditioning({"class_label": labels})

    def sample(noise, labels, steps):
        guidance = {}
        if cfg_scale != 1.0:
            null = torch.full_like(labels, null_class)
            guidance = dict(
                unconditional_guidance_scale=cfg_scale, unconditional_conditioning=cond(null)
            )
        with silenced():
            return code.ddim.DDIMSampler(ldm).sample(
                S=steps, batch_size=len(noise), shape=tuple(noise.shape[1:]),
                conditioning=cond(labels), eta=0.0, x_T=noise, verbose=False, **guidance,
            )[0]  # fmt: skip

    def train_step(x, y, precision):
        ldm.learning_rate = LEARNING_RATE
        with silenced():
            optimizer = ldm.configure_optimizers()  # AdamW over the UNet and the class embedder

        def step():
            with precision_context(x.device, precision):
                loss, _ = ldm(x, {"class_label": y})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    return LDMSide(
        model=ldm,
        forward=lambda x, t, y: ldm.apply_model(x, t, cond(y)),
        loss_at=lambda x, y, t, noise: ldm.p_losses(x, cond(y), t, noise=noise)[0],
        sample=sample,
        train_step=train_step,
        cfg_scale=cfg_scale,
    )


def perturb(model: nn.Module, seed: int = 1, scale: float = 0.02) -> None:
    """Add seeded noise to every parameter (the zero-initialised convs included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(scale * torch.randn(param.shape, generator=generator))


def paired_models(
    preset: str, code: LDMCode, device: torch.device, **overrides
) -> tuple[LDMUNet, nn.Module]:
    """(ours, official) with identical weights, in eval mode on ``device``: our preset (seeded,
    every parameter perturbed) and upstream's ``LatentDiffusion`` holding its weights."""
    torch.manual_seed(0)
    ours = create_generator(preset, **overrides)
    perturb(ours)
    official = official_latent_diffusion(code, ours)
    return ours.to(device).eval(), official.to(device).eval()


def benchmark_batch(model: LDMUNet, batch: int, size: int, device: torch.device, seed: int = 0):
    """A fixed (seeded) batch: latents x0, timesteps t, labels y and noise (also x_T)."""
    c = model.config
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c.latent_channels, size, size, generator=g)
    t = torch.randint(0, c.schedule.num_timesteps, (batch,), generator=g)
    y = torch.randint(0, c.num_classes, (batch,), generator=g)
    noise = torch.randn(x.shape, generator=g)
    return tuple(v.to(device) for v in (x, t, y, noise))


def parity(
    ours: LDMSide, official: LDMSide, batch, parity_steps: int
) -> dict[str, list[TensorDiff]]:
    """Exact-fp32 differences of the eval forward, the loss at fixed (t, noise) and a guided
    DDIM sample of ``parity_steps`` steps."""
    x, t, y, noise = batch
    with torch.no_grad(), exact_fp32():
        forward = tensor_diffs({"eps": ours.forward(x, t, y)}, {"eps": official.forward(x, t, y)})
        loss = tensor_diffs(
            {"loss": ours.loss_at(x, y, t, noise)}, {"loss": official.loss_at(x, y, t, noise)}
        )
        sample = tensor_diffs(
            {"x": ours.sample(noise, y, parity_steps)},
            {"x": official.sample(noise, y, parity_steps)},
        )
    return {"forward": forward, "loss": loss, "sample": sample}


def compare(
    subject: str,
    ours: LDMSide,
    official: LDMSide,
    batch,
    device: torch.device,
    precisions: list[str],
    iters: int,
    warmup: int,
    sample_steps: int,
    sample_iters: int,
    parity_steps: int = 5,
    rtol: float = PARITY_RTOL,
) -> list[ComparisonRow]:
    """Parity first; then, per precision, the forward and the sampler of both; then, per
    precision, both training steps (last: training changes the weights)."""
    diffs = parity(ours, official, batch, parity_steps)
    x, t, y, noise = batch
    n = len(x)
    forward = Phase(
        "forward", n,
        ours=lambda: ours.forward(x, t, y), official=lambda: official.forward(x, t, y),
        ours_outputs=lambda: {"eps": ours.forward(x, t, y)},
        official_outputs=lambda: {"eps": official.forward(x, t, y)},
        parity=diffs["forward"],
    )  # fmt: skip
    sample = Phase(
        f"DDIM sample (S = {sample_steps}, cfg {ours.cfg_scale:g})", n,
        ours=lambda: ours.sample(noise, y, sample_steps),
        official=lambda: official.sample(noise, y, sample_steps),
        ours_outputs=lambda: {"x": ours.sample(noise, y, parity_steps)},
        official_outputs=lambda: {"x": official.sample(noise, y, parity_steps)},
        parity=diffs["sample"],
    )  # fmt: skip
    rows = []
    for precision in precisions:
        rows += time_phases(subject, [forward], device, precision, iters, warmup, rtol)
        rows += time_phases(subject, [sample], device, precision, sample_iters, 1, rtol)
    for precision in precisions:
        rows.append(
            training_row(
                subject, "train", TrainingStep(ours.model, lambda p: ours.train_step(x, y, p)),
                TrainingStep(official.model, lambda p: official.train_step(x, y, p)), n, device,
                precision, iters, warmup, diffs["forward"] + diffs["loss"],
                "random t, noise (and our label dropout) per step", rtol,
            )
        )  # fmt: skip
    return rows


def comparison_markdown(
    rows: list[ComparisonRow],
    device: torch.device,
    batches: list[int],
    latent_size: int,
    checkout: str,
    sample_steps: int,
    cfg_scale: float = CFG_SCALE,
) -> str:
    """The same-run comparison as a markdown section."""
    anchors = ", ".join(f"{v:g} img/s {k}" for k, v in ANCHORS.items())
    lines = [
        f"### LDM against the official code, same run, on {device_name(device)}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `benchmarks/bench_generators.py`; "
        f"batches {batches}, {latent_size} x {latent_size} latents. Official code: "
        f"{describe_checkout(checkout)}, outside the repository (`LatentDiffusion` as "
        "cin256-v2.yaml builds it, an identity first stage, its transformer blocks' checkpoint "
        "made autocast-safe). Our "
        "UNet (random weights, every parameter perturbed) is loaded into it, so both hold "
        "identical weights. Parity in exact fp32 (TF32 off) on the benchmark batch: eps of the "
        "eval forward, the loss at a fixed (t, noise), a 5-step guided DDIM sample; "
        f"max |ours - official| / max |official| <= {PARITY_RTOL:g}, else the ratio is "
        f"withheld. Sampling: DDIM, eta 0, uniform grid, S = {sample_steps}, cfg {cfg_scale:g} "
        "(null class 1000). Training: each side's own step, AdamW lr 1e-4; ours does not "
        "checkpoint, upstream's transformer blocks do. Peak GiB: CUDA memory above the resident "
        "weights (and, for training, the optimiser state). Anchors (official code, H100, "
        f"cin256-v2 training step at batch 64, issue 12): {anchors}.",
        "",
        *comparison_table(rows),
    ]
    return "\n".join(lines) + "\n"
