"""DDPM for LDM: the linear beta schedule, the eps-prediction objective, DDIM and ancestral sampling.

Everything follows CompVis/latent-diffusion (``ldm/models/diffusion/ddpm.py`` ``register_schedule``
and ``p_losses``, ``ldm/models/diffusion/ddim.py``, ``ldm/modules/diffusionmodules/util.py``),
including the details that differ from the textbook:

- the schedule is computed in float64 and every coefficient is then cast to float32, the
  precision the sampler and the objective use;
- DDIM's "uniform" grid is ``arange(0, T, T // steps) + 1``: the model is called at those +1
  timesteps, ``steps`` = 6 gives 7 of them (1, 167, ..., 997), and at the last step alpha_prev is
  ``alphas_cumprod[0]``, not 1, so the sampler returns x at t = 0, not the predicted x0;
- classifier-free guidance runs one batch [uncond; cond] with the null class as uncond.

Models are called as ``model(x, t, y)`` and return eps; ``model.null_class`` is the
unconditional label. Every random draw of a sampler comes from one ``torch.Generator`` per
sample, so sample i does not depend on the batch it was drawn in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class DDPMScheduleConfig:
    """The linear schedule: betas = linspace(sqrt(linear_start), sqrt(linear_end), T) ** 2."""

    num_timesteps: int = 1000
    linear_start: float = 0.0015
    linear_end: float = 0.0195

    def validate(self) -> None:
        """Raise ValueError unless T >= 2 and 0 < linear_start < linear_end < 1."""
        if self.num_timesteps < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {self.num_timesteps}")
        if not 0.0 < self.linear_start < self.linear_end < 1.0:
            raise ValueError(
                f"need 0 < linear_start < linear_end < 1, got {self.linear_start} and "
                f"{self.linear_end}"
            )


class DDPMSchedule:
    """The schedule's per-timestep coefficients (CPU tensors of length T).

    ``betas`` and ``alphas_cumprod_f64`` are float64; every other coefficient is the float32
    cast of its float64 value, as upstream's ``register_schedule`` stores them.
    """

    def __init__(self, config: DDPMScheduleConfig) -> None:
        config.validate()
        self.config = config
        steps = config.num_timesteps
        betas = (
            torch.linspace(
                math.sqrt(config.linear_start),
                math.sqrt(config.linear_end),
                steps,
                dtype=torch.float64,
            )
            ** 2
        )
        alphas = 1.0 - betas
        cumprod = torch.cumprod(alphas, dim=0)
        cumprod_prev = torch.cat([cumprod.new_ones(1), cumprod[:-1]])
        posterior_variance = betas * (1.0 - cumprod_prev) / (1.0 - cumprod)
        self.betas = betas
        self.alphas_cumprod_f64 = cumprod
        self.alphas_cumprod = cumprod.float()
        self.sqrt_alphas_cumprod = cumprod.sqrt().float()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - cumprod).sqrt().float()
        self.sqrt_recip_alphas_cumprod = (1.0 / cumprod).sqrt().float()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / cumprod - 1.0).sqrt().float()
        # The posterior variance is 0 at t = 0; its log is clipped there, as upstream does.
        self.posterior_log_variance_clipped = posterior_variance.clamp(min=1e-20).log().float()
        self.posterior_mean_coef1 = (betas * cumprod_prev.sqrt() / (1.0 - cumprod)).float()
        self.posterior_mean_coef2 = ((1.0 - cumprod_prev) * alphas.sqrt() / (1.0 - cumprod)).float()
        self._device_copies: dict[tuple[str, torch.device], Tensor] = {}

    @property
    def num_timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return self.config.num_timesteps

    def on_device(self, name: str, device: torch.device) -> Tensor:
        """The coefficient ``name`` (an attribute, e.g. ``"sqrt_alphas_cumprod"``) on ``device``.

        Each is copied to a device once and kept: a copy from host memory to a GPU waits for
        the GPU's queue, which would stall every training step that reads the schedule.
        """
        key = (name, torch.device(device))
        if key not in self._device_copies:
            self._device_copies[key] = getattr(self, name).to(device)
        return self._device_copies[key]

    def _gather(self, name: str, t: Tensor, like: Tensor) -> Tensor:
        """Coefficient ``name`` at timesteps ``t``, shaped N x 1 x 1 x 1 on ``like``'s device."""
        values = self.on_device(name, t.device)[t].to(like.device)
        return values.view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, per sample t."""
        return self._gather("sqrt_alphas_cumprod", t, x0) * x0 + (
            self._gather("sqrt_one_minus_alphas_cumprod", t, x0) * noise
        )


def schedule_of(model: Any, schedule: DDPMSchedule | None = None) -> DDPMSchedule:
    """``schedule`` if given, else ``model.schedule`` (the schedule the model was trained with)."""
    if schedule is not None:
        return schedule
    found = getattr(model, "schedule", None)
    if not isinstance(found, DDPMSchedule):
        raise ValueError(f"{type(model).__name__} has no DDPM schedule: pass schedule=")
    return found


class DDPMObjective:
    """The LDM training loss: eps prediction, MSE averaged over every element.

    ``t`` is uniform over [0, T) and the noise standard normal, both drawn from ``generator``;
    in train mode the model's label dropout (its ``sample_label_drop``) is drawn from it too, so
    a seeded generator makes a step reproducible. The model may be wrapped in
    DistributedDataParallel (its ``module`` is asked for the label dropout).
    """

    uses_tokens = False

    def __init__(self, schedule: DDPMScheduleConfig | DDPMSchedule | None = None) -> None:
        if schedule is None:
            schedule = DDPMScheduleConfig()
        self.schedule = schedule if isinstance(schedule, DDPMSchedule) else DDPMSchedule(schedule)

    def __call__(
        self,
        model: Any,
        x0: Tensor,
        labels: Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Draw t, noise and the label dropout; return ``{"loss", "mse"}`` (see :meth:`loss_at`)."""
        if x0.dim() != 4:
            raise ValueError(f"expected latents N x C x h x w, got {tuple(x0.shape)}")
        n = x0.shape[0]
        device = generator.device if generator is not None else x0.device
        t = torch.randint(
            0, self.schedule.num_timesteps, (n,), generator=generator, device=device
        ).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=device, dtype=x0.dtype)
        inner = getattr(model, "module", model)
        drop = inner.sample_label_drop(n, generator) if inner.training else None
        return self.loss_at(model, x0, labels, t, noise.to(x0.device), drop)

    def training_losses(self, model: Any, x0: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """The loss terms of one batch with every draw from torch's global generator (the
        objective interface of ``freqlat.generators.training_objective``)."""
        return self(model, x0, labels)

    def loss_at(
        self,
        model: Any,
        x0: Tensor,
        labels: Tensor,
        t: Tensor,
        noise: Tensor,
        drop: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """The loss at given timesteps, noise and label-drop mask.

        ``"loss"`` = mean((eps_hat - noise)^2) over every element, to backpropagate; ``"mse"``
        is its detached copy for logging.
        """
        x_t = self.schedule.q_sample(x0, t, noise)
        eps = model(x_t, t, labels, drop=drop)
        loss = (eps.float() - noise.float()).pow(2).mean()
        return {"loss": loss, "mse": loss.detach()}


def per_sample_normal(
    generators: Sequence[torch.Generator],
    shape: Sequence[int],
    device: torch.device | str | None = None,
) -> Tensor:
    """A float32 batch ``len(generators) x *shape``: row i is drawn from ``generators[i]``.

    Each row is drawn on its generator's device and then moved, so with CPU generators a seed
    gives the same noise on every device and in every batch.
    """
    rows = [torch.randn(tuple(shape), generator=g, device=g.device) for g in generators]
    if not rows:
        raise ValueError("per_sample_normal needs at least one generator")
    return torch.stack(rows).to(device if device is not None else rows[0].device)


def ddim_timesteps(steps: int, num_timesteps: int = 1000) -> Tensor:
    """Upstream's "uniform" DDIM grid, ascending: ``arange(0, T, T // steps) + 1`` (int64).

    ``steps`` = 6 gives 7 timesteps (1, 167, ..., 997): the number of model calls is
    ``len(range(0, T, T // steps))``, which equals ``steps`` only when ``steps`` divides T.
    A grid whose last point is T - 1 (a stride dividing T - 1: more than T // 2 steps, or
    e.g. 3, 9 or 27 steps of 1000) would put its last timestep at T, outside the schedule
    (upstream fails there with an index error); that is a ValueError.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    stride = num_timesteps // steps
    grid = torch.arange(0, num_timesteps, stride, dtype=torch.int64) + 1
    if int(grid[-1]) >= num_timesteps:
        raise ValueError(
            f"{steps} DDIM steps: the uniform grid arange(0, {num_timesteps}, "
            f"{num_timesteps} // {steps}) + 1 would reach t = {num_timesteps}, outside the "
            f"schedule; use another number of steps (at most {num_timesteps // 2})"
        )
    return grid


def _check_sampling_inputs(
    model: Any,
    noise: Tensor,
    labels: Tensor,
    generators: Sequence[torch.Generator] | None,
    needs_generators: bool,
) -> None:
    if getattr(model, "training", False):
        raise ValueError("sampling needs model.eval(): in train mode the model drops class labels")
    if noise.dim() != 4:
        raise ValueError(f"expected noise of shape N x C x h x w, got {tuple(noise.shape)}")
    if labels.shape != (noise.shape[0],):
        raise ValueError(
            f"expected {noise.shape[0]} labels (one per noise row), got shape {tuple(labels.shape)}"
        )
    if needs_generators and (generators is None or len(generators) != noise.shape[0]):
        got = "none" if generators is None else str(len(generators))
        raise ValueError(
            f"this sampler draws fresh noise at every step: pass one torch.Generator per sample "
            f"({noise.shape[0]}), got {got}"
        )


def guided_eps(model: Any, x: Tensor, t: Tensor, labels: Tensor, cfg_scale: float) -> Tensor:
    """eps at (x, t, labels), with classifier-free guidance unless ``cfg_scale`` is 1.

    Guided: one model call on the batch [uncond; cond] (labels [null; y]), then
    eps = eps_u + cfg_scale * (eps_c - eps_u), in float32.
    """
    if cfg_scale == 1.0:
        return model(x, t, labels).float()
    null = torch.full_like(labels, model.null_class)
    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null, labels])).float()
    uncond, cond = both.chunk(2)
    return uncond + cfg_scale * (cond - uncond)


@torch.no_grad()
def sample_ddim(
    model: Any,
    noise: Tensor,
    labels: Tensor,
    *,
    steps: int,
    eta: float = 0.0,
    cfg_scale: float = 1.0,
    generators: Sequence[torch.Generator] | None = None,
    schedule: DDPMSchedule | None = None,
) -> Tensor:
    """DDIM from x_T = ``noise`` to x_0, as upstream's ``DDIMSampler.sample`` (uniform grid).

    ``steps`` is upstream's S (see :func:`ddim_timesteps` for how many steps it gives). With
    ``eta`` > 0 every step adds sigma_t times fresh noise drawn from ``generators`` (one per
    sample). Returns x at the end of the last step (alpha_prev = alphas_cumprod[0]), in float32.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    _check_sampling_inputs(model, noise, labels, generators, needs_generators=eta > 0)
    schedule = schedule_of(model, schedule)
    timesteps = ddim_timesteps(steps, schedule.num_timesteps)
    cumprod = schedule.alphas_cumprod
    alphas = cumprod[timesteps]
    alphas_prev = torch.cat([cumprod[:1], cumprod[timesteps[:-1]]])
    # Upstream computes sigma in float64 from the float32 alphas, then uses it in float32.
    a, a_prev = alphas.double(), alphas_prev.double()
    sigmas = (eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()).float()
    sqrt_one_minus = (1.0 - alphas).sqrt()
    x = noise.float()
    for index in reversed(range(len(timesteps))):
        t = torch.full((x.shape[0],), int(timesteps[index]), dtype=torch.int64, device=x.device)
        eps = guided_eps(model, x, t, labels, cfg_scale)
        pred_x0 = (x - sqrt_one_minus[index] * eps) / alphas[index].sqrt()
        direction = (1.0 - alphas_prev[index] - sigmas[index] ** 2).sqrt() * eps
        x = alphas_prev[index].sqrt() * pred_x0 + direction
        if eta > 0:
            x = x + sigmas[index] * per_sample_normal(generators, x.shape[1:], x.device)
    return x


@torch.no_grad()
def sample_ddpm(
    model: Any,
    noise: Tensor,
    labels: Tensor,
    *,
    generators: Sequence[torch.Generator],
    cfg_scale: float = 1.0,
    schedule: DDPMSchedule | None = None,
) -> Tensor:
    """Ancestral DDPM sampling over all T steps, as upstream's ``LatentDiffusion.p_sample_loop``.

    At each t: x0_hat = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps (not clipped, as for
    latents upstream), mean = coef1_t x0_hat + coef2_t x_t, and x_{t-1} = mean +
    exp(logvar_t / 2) z for t > 0, z from ``generators`` (one per sample). Guidance
    (``cfg_scale`` != 1) is ours: upstream's ancestral sampler has none.
    """
    _check_sampling_inputs(model, noise, labels, generators, needs_generators=True)
    schedule = schedule_of(model, schedule)
    x = noise.float()
    for step in reversed(range(schedule.num_timesteps)):
        t = torch.full((x.shape[0],), step, dtype=torch.int64, device=x.device)
        eps = guided_eps(model, x, t, labels, cfg_scale)
        x0 = (
            schedule.sqrt_recip_alphas_cumprod[step] * x
            - schedule.sqrt_recipm1_alphas_cumprod[step] * eps
        )
        mean = schedule.posterior_mean_coef1[step] * x0 + schedule.posterior_mean_coef2[step] * x
        if step > 0:
            std = (0.5 * schedule.posterior_log_variance_clipped[step]).exp()
            x = mean + std * per_sample_normal(generators, x.shape[1:], x.device)
        else:
            x = mean
    return x
