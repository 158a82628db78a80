"""Sampling for the generation table: labels, noise, the three samplers, and the uint8 images.

Sample ``i`` depends on ``(seed, i)`` alone, never on the batch it is drawn in or on the rank
that draws it: its noise and every later random draw come from its own generator
(:func:`freqlat.eval.recon.image_generators`, seeded through numpy's SeedSequence from
``[seed, i]``), and its label is ``i mod num_classes`` (``balanced``) or one uniform draw from a
SeedSequence of ``[seed, i, 1]`` (``uniform``).

Upstream's choices, which ``upstream`` picks for each family:

- labels: hustvl/LightningDiT ``inference.py`` and openai/guided-diffusion
  ``scripts/image_sample.py`` draw uniform random labels (``torch.randint``); FoundationVision/VAR
  (README, "Sampling & Zero-shot Inference") samples 50 images per class;
- uint8: LightningDiT's ``tokenizer/vavae.py`` ``decode_to_images`` writes
  ``clamp(127.5 x + 128, 0, 255)`` cast to uint8 (rounds half up); ``image_sample.py`` writes
  ``((x + 1) * 127.5).clamp(0, 255)`` cast to uint8 (rounds down), as CompVis/latent-diffusion's
  and VAR's sample-saving code do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from freqlat.eval.recon import image_generators
from freqlat.generators import per_sample_normal, sample_ddim, sample_ddpm, sample_flow

FAMILIES: dict[str, str] = {"lightningdit": "flow", "ldm-unet": "ldm", "var": "var"}
"""Generator architecture -> the sampler family that draws from it."""

LABEL_MODES = ("upstream", "uniform", "balanced")
"""``--labels``: the family's upstream choice, uniform random, or ``i mod num_classes``."""

UPSTREAM_LABELS = {"flow": "uniform", "ldm": "uniform", "var": "balanced"}

QUANTIZATIONS = ("upstream", "adm", "lightningdit")
"""``--quantization``: how decoded images in [-1, 1] become uint8 (module docstring)."""

UPSTREAM_QUANTIZATION = {"flow": "lightningdit", "ldm": "adm", "var": "adm"}

QUANTIZATION_RULES = {
    "adm": "((x + 1) * 127.5).clamp(0, 255) cast to uint8, rounding down "
    "(openai/guided-diffusion scripts/image_sample.py)",
    "lightningdit": "clamp(127.5 * x + 128, 0, 255) cast to uint8, rounding half up "
    "(hustvl/LightningDiT tokenizer/vavae.py decode_to_images)",
}

LABEL_RULES = {
    "uniform": "label of sample i drawn uniformly from the classes by numpy's Generator seeded "
    "with SeedSequence([seed, i, 1]) (upstream LightningDiT and ADM draw uniform labels)",
    "balanced": "label of sample i is i mod num_classes (50 per class for 50,000 samples, as "
    "VAR's evaluation)",
}

LABEL_STREAM = 1
"""Third SeedSequence word of the label draws, so that they are independent of the noise."""


def resolve_choice(choice: str, family: str, upstream: dict[str, str]) -> str:
    """``choice``, or the family's upstream choice when it is ``upstream``."""
    return upstream[family] if choice == "upstream" else choice


def sample_labels(indices: Sequence[int], seed: int, num_classes: int, mode: str) -> Tensor:
    """The int64 labels of samples ``indices`` (``mode``: ``uniform`` or ``balanced``)."""
    if mode == "balanced":
        return torch.tensor([i % num_classes for i in indices], dtype=torch.int64)
    if mode != "uniform":
        raise ValueError(f"labels must be 'uniform' or 'balanced', got {mode!r}")
    draws = [
        np.random.default_rng(np.random.SeedSequence([seed, i, LABEL_STREAM])).integers(num_classes)
        for i in indices
    ]
    return torch.tensor(draws, dtype=torch.int64)


def to_uint8_images(images: Tensor, rule: str) -> Tensor:
    """Decoded images (N x 3 x H x W, about [-1, 1]) as uint8 by ``rule`` (``adm`` or
    ``lightningdit``, :data:`QUANTIZATION_RULES`), computed in float32.

    Non-finite values are a ValueError (a cast would turn them into arbitrary pixels).
    """
    x = images.float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("the decoded samples hold NaN or infinite values")
    if rule == "adm":
        return ((x + 1) * 127.5).clamp(0, 255).to(torch.uint8)
    if rule == "lightningdit":
        return torch.clamp(127.5 * x + 128.0, 0, 255).to(torch.uint8)
    raise ValueError(f"unknown uint8 conversion {rule!r}; known: {sorted(QUANTIZATION_RULES)}")


def is_guided(family: str, sampler: dict[str, Any]) -> bool:
    """Whether a sampler setting uses classifier-free guidance (VAR: cfg > 0; else scale != 1)."""
    if family == "var":
        return sampler["cfg"] != 0
    return sampler["cfg_scale"] != 1


def sampler_settings(family: str, options: Any, cfg: float) -> dict[str, Any]:
    """The settings of ``family``'s sampler at guidance ``cfg``, from the command's options.

    The dict is what :func:`generate_images` runs and what the table records.
    """
    if family == "flow":
        return {
            "sampler": f"flow-{options.sampling_method}",
            "steps": options.steps,
            "timestep_shift": options.timestep_shift,
            "cfg_scale": cfg,
            "cfg_interval_start": options.cfg_interval_start,
            "guidance_channels": options.guidance_channels,
        }
    if family == "ldm":
        sampler = {"sampler": options.ldm_sampler, "cfg_scale": cfg}
        if options.ldm_sampler == "ddim":
            sampler.update(steps=options.ddim_steps, eta=options.ddim_eta)
        return sampler
    if family == "var":
        return {"sampler": "var", "cfg": cfg, "top_k": options.top_k, "top_p": options.top_p}
    raise ValueError(f"unknown generator family {family!r}")


def describe_sampler(sampler: dict[str, Any]) -> str:
    """One line saying what a sampler setting does."""
    kind = sampler["sampler"]
    if kind.startswith("flow-"):
        channels = sampler["guidance_channels"]
        return (
            f"{kind[5:]} ODE on linspace(0, 1, {sampler['steps']}) ({sampler['steps'] - 1} "
            f"updates), timestep shift {sampler['timestep_shift']}, CFG scale "
            f"{sampler['cfg_scale']} where t >= {sampler['cfg_interval_start']} on "
            f"{'all' if channels is None else f'the first {channels}'} latent channels "
            "(hustvl/LightningDiT inference.py, transport/)"
        )
    if kind == "ddim":
        return (
            f"DDIM, uniform grid of S = {sampler['steps']}, eta {sampler['eta']}, CFG scale "
            f"{sampler['cfg_scale']} (CompVis/latent-diffusion ldm/models/diffusion/ddim.py)"
        )
    if kind == "ddpm":
        return f"DDPM ancestral sampling over 1000 steps, CFG scale {sampler['cfg_scale']}"
    return (
        f"next-scale prediction, cfg {sampler['cfg']} ramped over the scales, top-k "
        f"{sampler['top_k']}, top-p {sampler['top_p']} (FoundationVision/VAR models/var.py)"
    )


@torch.no_grad()
def generate_images(
    loaded: Any,
    indices: Sequence[int],
    labels: Tensor,
    sampler: dict[str, Any],
    seed: int,
    device: torch.device,
) -> Tensor:
    """Decoded float images of samples ``indices`` with ``labels`` (a :class:`LoadedGenerator`
    on ``device``), drawn as ``sampler`` says; sample ``i``'s randomness comes from
    ``(seed, i)`` only."""
    model, tokenizer = loaded.model, loaded.tokenizer.model
    labels = labels.to(device)
    if loaded.family == "var":
        generators = image_generators(list(indices), seed, device)
        tokens = model.generate(
            labels,
            cfg=sampler["cfg"],
            top_k=sampler["top_k"],
            top_p=sampler["top_p"],
            generator=generators,
        )
        return tokenizer.decode_indices(tokens)
    generators = image_generators(list(indices), seed)
    noise = per_sample_normal(generators, loaded.latent_space.latent_shape, device)
    if loaded.family == "flow":
        latents = sample_flow(
            model,
            noise,
            labels,
            steps=sampler["steps"],
            cfg_scale=sampler["cfg_scale"],
            cfg_interval_start=sampler["cfg_interval_start"],
            timestep_shift=sampler["timestep_shift"],
            guidance_channels=sampler["guidance_channels"],
            method=sampler["sampler"].removeprefix("flow-"),
        )
    elif sampler["sampler"] == "ddim":
        latents = sample_ddim(
            model,
            noise,
            labels,
            steps=sampler["steps"],
            eta=sampler["eta"],
            cfg_scale=sampler["cfg_scale"],
            generators=generators if sampler["eta"] > 0 else None,
        )
    else:
        latents = sample_ddpm(
            model, noise, labels, generators=generators, cfg_scale=sampler["cfg_scale"]
        )
    return tokenizer.decode(loaded.latent_space.denormalize(latents))
