"""Make ``data/ldm_upstream.safetensors``: CompVis/latent-diffusion's own outputs on weights and
inputs that our tests rebuild, so that parity is pinned without the upstream code.

The weights are not stored: :func:`randomize_` draws them from a seed in the order of our key
names, and the script hands the same values to upstream under its names. Inputs and upstream's
outputs are stored. Run it where a checkout of CompVis/latent-diffusion and its imports
(omegaconf, einops, pytorch_lightning < 2) are available::

    python packages/generators/tests/make_ldm_fixture.py --checkout /path/to/latent-diffusion

It prints the parity figures of every case (including cin256-v2 at its own 64 x 64 latents,
too slow for the suite and not stored) and writes the fixture. Upstream is imported and built
by ``benchmarks/official_code.py`` (``official_ldm_code``, ``official_latent_diffusion``): the
modules it imports but these runs never use (taming, clip, kornia) are stubbed, and its
DDIMSampler keeps its schedule on the model's device, here the CPU (upstream moves it to CUDA
unconditionally).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from freqlat.generators import (
    DDPMObjective,
    LDMUNet,
    create_generator,
    per_sample_normal,
    preset_config,
    sample_ddim,
    sample_ddpm,
)

FIXTURE = Path(__file__).resolve().parent / "data" / "ldm_upstream.safetensors"
MANIFEST = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "freqlat"
    / "generators"
    / "manifests"
    / "ldm-cin256-v2.json"
)
WEIGHT_SEED = 1234
INPUT_SEED = 0
NOISE_SEED = 100
CFG_RUN = {"steps": 6, "eta": 0.0, "cfg_scale": 3.0}
ETA_RUN = {"steps": 10, "eta": 0.7, "cfg_scale": 1.0}


@dataclass(frozen=True)
class Case:
    """One configuration compared with upstream: a preset, overrides, latent size and batch."""

    preset: str
    latent_size: int
    batch: int
    overrides: dict = field(default_factory=dict)
    ddpm: bool = False
    stored: bool = True


CASES = {
    # A shorter schedule (T = 200) keeps upstream's 1 x T-step ancestral loop quick.
    "tiny": Case(
        "ldm-tiny",
        latent_size=8,
        batch=3,
        overrides={"latent_channels": 4, "schedule": {"num_timesteps": 200}},
        ddpm=True,
    ),
    # The released architecture; 16 x 16 latents keep the suite's (slow) check short.
    "cin256-v2": Case("ldm-cin256-v2", latent_size=16, batch=2),
    "cin256-v2-64": Case("ldm-cin256-v2", latent_size=64, batch=2, stored=False),
}


def randomize_(model: torch.nn.Module, seed: int = WEIGHT_SEED) -> torch.nn.Module:
    """Overwrite every parameter and buffer with seeded random values (zero-init ones too).

    Keys are visited in sorted order; matrices and kernels get N(0, 1 / fan_in), 1-D weights
    1 + N(0, 0.01), biases N(0, 0.01).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            noise = torch.randn(tensor.shape, generator=generator)
            if tensor.dim() >= 2:
                tensor.copy_(noise / math.sqrt(tensor[0].numel()))
            elif name.endswith("weight"):
                tensor.copy_(1.0 + 0.1 * noise)
            else:
                tensor.copy_(0.1 * noise)
    return model


def build_ours(case: Case) -> LDMUNet:
    """Our model of ``case`` with the seeded random weights, in eval mode."""
    return randomize_(create_generator(case.preset, **case.overrides)).eval()


def make_inputs(model: LDMUNet, case: Case) -> dict[str, Tensor]:
    """The seeded inputs of ``case``: latents, timesteps, labels (one null), noises."""
    generator = torch.Generator().manual_seed(INPUT_SEED)
    shape = (case.batch, model.latent_channels, case.latent_size, case.latent_size)
    labels = torch.randint(0, model.config.num_classes, (case.batch,), generator=generator)
    labels[-1] = model.null_class
    return {
        "x": torch.randn(shape, generator=generator),
        "t": torch.randint(0, model.schedule.num_timesteps, (case.batch,), generator=generator),
        "y": labels,
        "loss_noise": torch.randn(shape, generator=generator),
        "x_T": torch.randn(shape, generator=generator),
    }


def noise_generators(batch: int) -> list[torch.Generator]:
    """One generator per sample for the samplers' per-step noise."""
    return [torch.Generator().manual_seed(NOISE_SEED + i) for i in range(batch)]


def ours_outputs(model: LDMUNet, case: Case, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our outputs on ``inputs``: eps, the loss, DDIM (guided; eta > 0) and DDPM."""
    x, t, y, x_t = inputs["x"], inputs["t"], inputs["y"], inputs["x_T"]
    with torch.no_grad():
        out = {
            "eps": model(x, t, y),
            "loss": DDPMObjective(model.schedule).loss_at(model, x, y, t, inputs["loss_noise"])[
                "loss"
            ],
            "ddim_cfg": sample_ddim(model, x_t, y, **CFG_RUN),
            "ddim_eta": sample_ddim(
                model, x_t, y, **ETA_RUN, generators=noise_generators(case.batch)
            ),
        }
        if case.ddpm:
            out["ddpm"] = sample_ddpm(model, x_t, y, generators=noise_generators(case.batch))
    return out


def relative_error(ours: Tensor, reference: Tensor) -> float:
    """max |ours - reference| / max |reference|."""
    scale = reference.abs().max().clamp_min(1e-30)
    return float((ours.double() - reference.double()).abs().max() / scale)


# ---- upstream side (needs the checkout) --------------------------------------------------------


def official_code() -> types.ModuleType:
    """``benchmarks/official_code.py``, which imports upstream's code from a checkout."""
    folder = Path(__file__).resolve().parents[3] / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module("official_code")


def _queue_noise(module: types.ModuleType, draws: list[Tensor]) -> None:
    """Make upstream's ``noise_like`` in ``module`` return ``draws`` in order (zeros after)."""

    def noise_like(shape, device, repeat=False):
        return draws.pop(0) if draws else torch.zeros(shape)

    module.noise_like = noise_like


def upstream_outputs(
    upstream: Any, ldm: torch.nn.Module, case: Case, inputs: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Upstream's outputs on ``inputs``, driven the way its scripts drive it."""
    x, t, y, x_t = inputs["x"], inputs["t"], inputs["y"], inputs["x_T"]
    shape = tuple(x.shape[1:])
    null = torch.full_like(y, ldm.cond_stage_model.embedding.num_embeddings - 1)
    with torch.no_grad():
        cond = ldm.get_learned_conditioning({"class_label": y})
        uncond = ldm.get_learned_conditioning({"class_label": null})
        out = {
            "eps": ldm.apply_model(x, t, cond),
            "loss": ldm.p_losses(x, cond, t, noise=inputs["loss_noise"])[0],
        }
        sampler = upstream.ddim.DDIMSampler(ldm)

        def ddim(run: dict, **guidance: object) -> Tensor:
            return sampler.sample(
                S=run["steps"],
                batch_size=case.batch,
                shape=shape,
                conditioning=cond,
                eta=run["eta"],
                x_T=x_t,
                verbose=False,
                **guidance,
            )[0]

        out["ddim_cfg"] = ddim(
            CFG_RUN,
            unconditional_guidance_scale=CFG_RUN["cfg_scale"],
            unconditional_conditioning=uncond,
        )
        generators = noise_generators(case.batch)
        steps = len(range(0, ldm.num_timesteps, ldm.num_timesteps // ETA_RUN["steps"]))
        _queue_noise(upstream.ddim, [per_sample_normal(generators, shape) for _ in range(steps)])
        out["ddim_eta"] = ddim(ETA_RUN)
        if case.ddpm:
            generators = noise_generators(case.batch)
            draws = [per_sample_normal(generators, shape) for _ in range(ldm.num_timesteps - 1)]
            _queue_noise(upstream.ddpm, draws)
            out["ddpm"] = ldm.p_sample_loop(cond, x.shape, x_T=x_t, verbose=False)
    return out


def check_import(upstream_ldm: torch.nn.Module, ours: LDMUNet, inputs: dict[str, Tensor]) -> float:
    """Save upstream's full state dict in the release's container, load it with our importer."""
    from freqlat.generators.ldm_official import load_official_ldm

    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "cin256-v2.ckpt"
        torch.save({"state_dict": upstream_ldm.state_dict(), "epoch": 0, "global_step": 0}, file)
        imported = load_official_ldm("ldm-cin256-v2", file)
    with torch.no_grad():
        x, t, y = inputs["x"], inputs["t"], inputs["y"]
        return relative_error(imported(x, t, y), ours(x, t, y))


def write_manifest(code: types.ModuleType) -> None:
    """The key names and shapes of the released model's UNet and class embedder."""
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    from ldm.modules.encoders.modules import ClassEmbedder

    config = preset_config("ldm-cin256-v2")
    with torch.device("meta"):
        unet = UNetModel(**code.official_unet_params(config))
        embedder = ClassEmbedder(**code.official_embedder_params(config))
    keys = {f"model.diffusion_model.{k}": list(v.shape) for k, v in unet.state_dict().items()}
    keys.update({f"cond_stage_model.{k}": list(v.shape) for k, v in embedder.state_dict().items()})
    source = (
        "CompVis/latent-diffusion LatentDiffusion(configs/latent-diffusion/cin256-v2.yaml): "
        "UNetModel and ClassEmbedder keys of cin256-v2.ckpt['state_dict']"
    )
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items())
    MANIFEST.write_text(f'{{\n "source": {json.dumps(source)},\n "keys": {{\n{lines}\n }}\n}}\n')
    print(f"wrote {MANIFEST} ({len(keys)} keys)")


def main() -> None:
    """Print the parity figures of every case and write the fixture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, required=True, help="CompVis/latent-diffusion")
    parser.add_argument("--cases", nargs="*", default=sorted(CASES))
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument("--manifest", action="store_true", help="write the key manifest only")
    args = parser.parse_args()
    code = official_code()
    upstream = code.official_ldm_code(args.checkout)
    if args.manifest:
        write_manifest(code)
        return
    tensors: dict[str, Tensor] = {}
    meta: dict[str, object] = {"weight_seed": WEIGHT_SEED, "cfg_run": CFG_RUN, "eta_run": ETA_RUN}
    for name in args.cases:
        case = CASES[name]
        torch.manual_seed(0)
        ours = build_ours(case)
        inputs = make_inputs(ours, case)
        reference = code.official_latent_diffusion(upstream, ours)
        theirs = upstream_outputs(upstream, reference, case, inputs)
        mine = ours_outputs(ours, case, inputs)
        figures = {key: relative_error(mine[key], theirs[key]) for key in theirs}
        if case.preset == "ldm-cin256-v2" and case.latent_size == 16:
            figures["import_eps"] = check_import(reference, ours, inputs)
        print(name, json.dumps({k: f"{v:.2e}" for k, v in figures.items()}), flush=True)
        if case.stored:
            meta[name] = {"preset": case.preset, "overrides": case.overrides, "figures": figures}
            for key, value in {**inputs, **theirs}.items():
                tensors[f"{name}.{key}"] = value.detach().contiguous()
        del reference, ours
    if not args.no_write:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(FIXTURE), metadata={"meta": json.dumps(meta)})
        print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
