"""The rectified-flow objective and the ODE samplers of LightningDiT.

Conventions of hustvl/LightningDiT (`transport/transport.py`, `transport/integrators.py`,
`models/lightningdit.py` `forward_with_cfg`): x_t = t x1 + (1 - t) x0 with x1 data and x0 ~ N(0, I),
so t = 0 is noise and t = 1 data; the model predicts the velocity u = x1 - x0.

Training (:func:`flow_matching_loss`): t is logit-normal (sigmoid of N(0, 1)) or uniform, and the
loss is the mean squared error plus the mean of 1 - cosine(v_hat, u) over the channel axis.

Sampling (:func:`sample_flow`): a fixed grid of ``steps`` points ``linspace(0, 1, steps)``, warped by
the timestep shift t' = s t / (1 + (s - 1) t), and ``steps - 1`` Euler (or Heun) updates from
noise at t'_0 = 0 to data at t'_{steps-1} = 1. Classifier-free guidance mixes a conditional and an
unconditional (null-class) velocity as ``u + scale (c - u)`` on the first ``guidance_channels``
channels (upstream guides 3, a DiT legacy its published FIDs depend on), and only where the
shifted t is at least ``cfg_interval_start``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TIME_SAMPLINGS = ("logit-normal", "uniform")
METHODS = ("euler", "heun")
UPSTREAM_GUIDANCE_CHANNELS = 3


def sample_times(
    n: int,
    sampling: str = "logit-normal",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n`` training times in (0, 1): ``sigmoid(N(0, 1))`` or ``U(0, 1)`` (float32)."""
    if sampling not in TIME_SAMPLINGS:
        raise ValueError(f"time sampling must be one of {TIME_SAMPLINGS}, got {sampling!r}")
    draw_device = generator.device if generator is not None else device
    if sampling == "uniform":
        t = torch.rand(n, generator=generator, device=draw_device)
    else:
        t = torch.sigmoid(torch.randn(n, generator=generator, device=draw_device))
    return t.to(device) if device is not None else t


def flow_matching_loss(
    model: nn.Module,
    x1: Tensor,
    y: Tensor,
    *,
    generator: torch.Generator | None = None,
    time_sampling: str = "logit-normal",
    cosine_loss: bool = True,
    x0: Tensor | None = None,
    t: Tensor | None = None,
) -> dict[str, Tensor]:
    """LightningDiT's training loss on a batch of (normalised) latents ``x1`` with labels ``y``.

    Draws the noise ``x0`` and the times ``t`` from ``generator`` (or torch's global generator)
    unless they are given. Returns ``{"loss", "mse", "cosine", "t"}``: ``loss`` = ``mse`` +
    ``cosine`` (without the cosine term if ``cosine_loss`` is off), each a scalar in float32,
    ``mse`` the mean of (v_hat - u)^2 and ``cosine`` the mean of 1 - cos(v_hat, u) along channels.
    The model runs in whatever mode it is in (training mode drops labels).
    """
    if x0 is None:
        draw_device = generator.device if generator is not None else x1.device
        x0 = torch.randn(x1.shape, generator=generator, device=draw_device).to(x1)
    if t is None:
        t = sample_times(x1.shape[0], time_sampling, generator, x1.device)
    if x0.shape != x1.shape or t.shape != (x1.shape[0],):
        raise ValueError(
            f"x0 {tuple(x0.shape)} and t {tuple(t.shape)} must match x1 {tuple(x1.shape)}"
        )
    t = t.to(x1)
    tb = t.view(-1, *[1] * (x1.dim() - 1))
    xt = tb * x1 + (1 - tb) * x0
    target = (x1 - x0).float()
    velocity = model(xt, t, y).float()
    mse = (velocity - target).pow(2).mean()
    terms = {"mse": mse, "t": t}
    if cosine_loss:
        terms["cosine"] = (1 - F.cosine_similarity(velocity, target, dim=1)).mean()
        terms["loss"] = mse + terms["cosine"]
    else:
        terms["loss"] = mse
    return terms


class FlowMatchingObjective:
    """LightningDiT's training objective as an object: :func:`flow_matching_loss` with the run's
    options (hustvl/LightningDiT ``transport.training_losses``; ``use_lognorm``,
    ``use_cosine_loss``). Noise, times and label dropout come from torch's global generator.
    """

    uses_tokens = False

    def __init__(self, time_sampling: str = "logit-normal", cosine_loss: bool = True) -> None:
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(
                f"time sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}"
            )
        self.time_sampling = time_sampling
        self.cosine_loss = cosine_loss

    def training_losses(self, model: nn.Module, x1: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """The terms of :func:`flow_matching_loss` on normalised latents ``x1`` (``"loss"`` to
        backpropagate; ``"t"`` holds the batch's times)."""
        return flow_matching_loss(
            model, x1, labels, time_sampling=self.time_sampling, cosine_loss=self.cosine_loss
        )


def shift_timesteps(t: Tensor, shift: float) -> Tensor:
    """The timestep shift ``s t / (1 + (s - 1) t)``; s < 1 spends more steps near the noise."""
    if shift <= 0:
        raise ValueError(f"timestep_shift must be positive, got {shift}")
    return shift * t / (1 + (shift - 1) * t)


def flow_timesteps(steps: int, shift: float = 1.0) -> Tensor:
    """The sampling grid: ``linspace(0, 1, steps)`` shifted (float32, ``steps`` points)."""
    if steps < 2:
        raise ValueError(f"steps counts grid points and must be >= 2, got {steps}")
    return shift_timesteps(torch.linspace(0, 1, steps), shift)


def seeded_noise(seeds: Sequence[int], shape: Sequence[int], device=None) -> Tensor:
    """One N(0, I) sample of ``shape`` per seed, each from its own generator, stacked.

    Image i depends on ``seeds[i]`` alone, never on the batch size or the number of processes.
    """
    samples = [
        torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(s))) for s in seeds
    ]
    return torch.stack(samples).to(device)


def guided_velocity(
    model: nn.Module,
    x: Tensor,
    t: Tensor,
    labels: Tensor,
    *,
    cfg_scale: float = 1.0,
    cfg_interval_start: float = 0.0,
    guidance_channels: int | None = UPSTREAM_GUIDANCE_CHANNELS,
    null_class: int | None = None,
) -> Tensor:
    """The velocity of ``model`` at ``x`` with classifier-free guidance, as upstream's
    ``forward_with_cfg`` computes it for the conditional half of its batch.

    With ``cfg_scale == 1``, or when every t of the batch is below ``cfg_interval_start``, it is
    the plain conditional forward on N rows. Otherwise the model runs once on ``[x; x]`` with
    labels ``[labels; null]``, and the first ``guidance_channels`` channels (all if None) become
    ``u + cfg_scale (c - u)`` for the rows whose t is at least ``cfg_interval_start``; the other
    channels and rows keep the conditional velocity.
    """
    active = t >= cfg_interval_start
    if cfg_scale == 1.0 or not bool(active.any()):
        return model(x, t, labels)
    null = model.null_class if null_class is None else null_class
    both = model(
        torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, null)])
    )
    cond, uncond = both.chunk(2)
    channels = cond.shape[1] if guidance_channels is None else guidance_channels
    guided = uncond[:, :channels] + cfg_scale * (cond[:, :channels] - uncond[:, :channels])
    mask = active.view(-1, *[1] * (cond.dim() - 1))
    head = torch.where(mask, guided, cond[:, :channels])
    return torch.cat([head, cond[:, channels:]], dim=1)


@torch.no_grad()
def sample_flow(
    model: nn.Module,
    noise: Tensor,
    labels: Tensor,
    *,
    steps: int,
    cfg_scale: float = 1.0,
    cfg_interval_start: float = 0.0,
    timestep_shift: float = 1.0,
    guidance_channels: int | None = UPSTREAM_GUIDANCE_CHANNELS,
    method: str = "euler",
    null_class: int | None = None,
) -> Tensor:
    """Integrate the flow ODE from ``noise`` (t = 0) to samples (t = 1), shaped like ``noise``.

    ``steps`` is the number of grid points (``steps - 1`` updates), the grid is shifted by
    ``timestep_shift`` (1 = none; upstream samples with 0.3), and the velocity is
    :func:`guided_velocity`. ``method="euler"`` reproduces upstream's
    ``Sampler.sample_ode(sampling_method="euler", num_steps=steps, timestep_shift=s)`` driven by
    ``forward_with_cfg``; ``"heun"`` is Heun's second-order method on the same grid, with a plain
    Euler step into t = 1 (2 * steps - 3 model evaluations). ``guidance_channels`` defaults to
    upstream's 3; None guides every channel. Put the model in eval mode first: in training mode
    it drops labels.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    grid = flow_timesteps(steps, timestep_shift).to(noise.device)
    x = noise
    n = noise.shape[0]

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        return guided_velocity(
            model, x, t.expand(n).to(x.dtype), labels, cfg_scale=cfg_scale,
            cfg_interval_start=cfg_interval_start, guidance_channels=guidance_channels,
            null_class=null_class,
        ).to(x.dtype)  # fmt: skip

    for i in range(steps - 1):
        t0, t1 = grid[i], grid[i + 1]
        v0 = velocity(x, t0)
        if method == "heun" and i < steps - 2:
            predicted = x + (t1 - t0) * v0
            x = x + (t1 - t0) * 0.5 * (v0 + velocity(predicted, t1))
        else:
            x = x + (t1 - t0) * v0
    return x
