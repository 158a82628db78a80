"""Benchmark: the generators' training step, forward and sampling against the official code, in
the same run, on identical weights, after a parity check; and the sampler table (how far Euler
and Heun samples are from a converged reference, by step count).

The presets of one run name one family, whose official code comes from a checkout under
``--official-root DIR`` (or its own flag):

- ``lightningdit-*``: ``DIR/hustvl+LightningDiT`` (``--lightningdit``; needs einops,
  torchdiffeq, scipy). Below.
- ``ldm-*``: ``DIR/CompVis+latent-diffusion`` (``--latent-diffusion``; needs omegaconf, einops,
  pytorch_lightning < 2): the UNet's training step, forward and guided DDIM sampling, see
  ``generator_ldm.py``. GPU default: fp32 and bf16.
- ``var-*``: ``DIR/FoundationVision+VAR`` (``--var``; needs huggingface_hub): the training
  step from cached tokens (and upstream's as shipped, which encodes images), the teacher-forced
  forward and generation to images, see ``generator_var.py``. GPU default: fp16 and bf16.

LightningDiT: the official model is built from the checkout (its ``models/lightningdit.py``,
random weights with every trained parameter perturbed so that no adaLN-Zero gate is zero), its
state dict is loaded into ours strictly, and parity is checked in exact fp32 (TF32 off) on the
benchmark batch before anything is timed: the eval forward, the training loss terms on a fixed
(t, x0) (the official ``Transport.training_losses``), and a sample of the official
``Sampler.sample_ode(sampling_method="euler")`` driven by ``forward_with_cfg``. Then, under each
``--precision`` (bf16 autocast on a GPU), each of
- ``train``: forward + loss (logit-normal t, MSE + cosine) + backward + AdamW (lr 2e-4,
  betas (0.9, 0.95)) on a fixed latent batch, labels dropped with p = 0.1;
- ``forward``: the eval forward;
- ``sample``: Euler with CFG (scale 10, interval from t = 0.1, shift 0.3, 3 guided channels)
  over ``--sample-steps`` grid points;
is timed for ours and then the official code, with the peak CUDA memory above the resident
weights. On a GPU the official code keeps its ``@torch.compile`` decorators as shipped and ours is
compiled with ``torch.compile`` (``--no-compile`` turns both off); on a CPU both run eagerly. The
LDM and VAR comparisons run both sides eagerly, as their official code ships. The speed-up is
printed only where parity holds. Install the official code's extra packages outside the project.

    uv run --no-sync python benchmarks/bench_generators.py --official-root DIR [--device cuda] \\
        [--presets lightningdit-xl-1 lightningdit-b-1] [--batch 128 256] [--append benchmarks/RESULTS.md]
    uv run --no-sync python benchmarks/bench_generators.py --official-root DIR --presets ldm-cin256-v2 --batch 64
    uv run --no-sync python benchmarks/bench_generators.py --official-root DIR --presets var-d16 --batch 96
    uv run --no-sync python benchmarks/bench_generators.py --sampler-table [--append benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import generator_ldm as ldm
import generator_var as var
import torch
from benchlib import (
    PARITY_RTOL,
    ComparisonRow,
    Phase,
    TrainingStep,
    comparison_table,
    device_name,
    emit,
    exact_fp32,
    precision_context,
    tensor_diffs,
    time_phases,
    training_row,
)
from official_code import (
    LDM_CHECKOUT,
    VAR_CHECKOUT,
    LightningDiTCode,
    describe_checkout,
    official_euler_sampler,
    official_ldm_code,
    official_lightningdit_code,
    official_var_code,
    use_autocast_safe_checkpoint,
)
from torch import Tensor, nn

from freqlat.generators import (
    create_generator,
    flow_matching_loss,
    preset_config,
    sample_flow,
    var_training_recipe,
)
from freqlat.generators.lightningdit import LightningDiT
from freqlat.tokenizers.pretrained import load_state_strict

CHECKOUT = "hustvl+LightningDiT"
# Upstream's 64-epoch sampling recipe (configs/reproductions/*_64ep_cfg.yaml).
CFG_SCALE, CFG_INTERVAL_START, TIMESTEP_SHIFT = 10.0, 0.1, 0.3
# Official code on one H100 (issue 9), training img/s at these batches, bf16.
ANCHORS = {"lightningdit-xl-1": 478.0, "lightningdit-b-1": 2086.0}


@dataclass(frozen=True)
class GeneratorSide:
    """One implementation as the harness drives it.

    ``forward(x, t, y)`` is the eval forward; ``loss_terms(x1, y, t, x0)`` the training loss
    terms ``{"mse", "cosine"}`` on a fixed (t, x0); ``sample(noise, labels, steps)`` the guided
    Euler sampler; ``train_step(x1, y, precision)`` builds one training step (its own AdamW).
    """

    model: nn.Module
    forward: Callable[[Tensor, Tensor, Tensor], Tensor]
    loss_terms: Callable[[Tensor, Tensor, Tensor, Tensor], dict[str, Tensor]]
    sample: Callable[[Tensor, Tensor, int], Tensor]
    train_step: Callable[[Tensor, Tensor, str], Callable[[], None]]


def _adamw(model: nn.Module, fused: bool) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = {"fused": True} if fused else {}
    return torch.optim.AdamW(params, lr=2e-4, betas=(0.9, 0.95), weight_decay=0, **kwargs)


def our_side(model: LightningDiT, compiled: bool = False) -> GeneratorSide:
    """freqlat's LightningDiT, its loss and ``sample_flow`` (``compiled``: torch.compile'd)."""
    net = torch.compile(model) if compiled else model

    def loss_terms(x1, y, t, x0):
        terms = flow_matching_loss(net, x1, y, x0=x0, t=t)
        return {"mse": terms["mse"], "cosine": terms["cosine"]}

    def sample(noise, labels, steps):
        return sample_flow(
            net, noise, labels, steps=steps, cfg_scale=CFG_SCALE,
            cfg_interval_start=CFG_INTERVAL_START, timestep_shift=TIMESTEP_SHIFT,
            null_class=model.null_class,
        )  # fmt: skip

    def train_step(x1, y, precision):
        optimizer = _adamw(model, fused=x1.is_cuda)

        def step():
            with precision_context(x1.device, precision):
                loss = flow_matching_loss(net, x1, y)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    return GeneratorSide(model, net, loss_terms, sample, train_step)


def official_side(code: LightningDiTCode, model: nn.Module) -> GeneratorSide:
    """The official model driven as train.py and inference.py drive it: ``Transport.
    training_losses`` (Linear path, velocity, cosine loss, logit-normal t), the loss
    ``cos_loss.mean() + loss.mean()``, and ``Sampler.sample_ode`` over ``forward_with_cfg``."""

    def transport(fixed=None):
        made = code.transport.create_transport(
            "Linear", "velocity", None, None, None, use_cosine_loss=True, use_lognorm=True
        )
        if fixed is not None:
            made.sample = lambda x1, *args: (fixed[0], fixed[1], x1)
        return made

    def loss_terms(x1, y, t, x0):
        terms = transport((t, x0)).training_losses(model, x1, dict(y=y))
        return {"mse": terms["loss"].mean(), "cosine": terms["cos_loss"].mean()}

    def sample(noise, labels, steps):
        null = torch.full_like(labels, model.y_embedder.num_classes)
        run = official_euler_sampler(code, steps, TIMESTEP_SHIFT)
        out = run(
            torch.cat([noise, noise]), model.forward_with_cfg, y=torch.cat([labels, null]),
            cfg_scale=CFG_SCALE, cfg_interval=True, cfg_interval_start=CFG_INTERVAL_START,
        )  # fmt: skip
        return out[-1][: len(noise)]

    def train_step(x1, y, precision):
        optimizer = _adamw(model, fused=False)
        made = transport()

        def step():
            with precision_context(x1.device, precision):
                terms = made.training_losses(model, x1, dict(y=y))
                loss = terms["cos_loss"].mean() + terms["loss"].mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    return GeneratorSide(model, model.forward, loss_terms, sample, train_step)


def official_kwargs(model: LightningDiT) -> dict:
    """Upstream ``LightningDiT(...)`` constructor arguments of our model's config."""
    c = model.config
    return dict(
        input_size=c.input_size, patch_size=c.patch_size, in_channels=c.in_channels,
        hidden_size=c.hidden_size, depth=c.depth, num_heads=c.num_heads, mlp_ratio=c.mlp_ratio,
        class_dropout_prob=c.class_dropout_prob, num_classes=c.num_classes,
        use_qknorm=c.use_qknorm, use_swiglu=c.use_swiglu, use_rope=c.use_rope,
        use_rmsnorm=c.use_rmsnorm, wo_shift=c.wo_shift,
    )  # fmt: skip


def paired_models(
    preset: str, code: LightningDiTCode, device: torch.device, **overrides
) -> tuple[LightningDiT, nn.Module]:
    """(ours, official) with identical weights: the official model built from the checkout
    (seeded), every trained parameter perturbed, its state dict loaded strictly into ours."""
    ours = create_generator(preset, **overrides)
    torch.manual_seed(0)
    official = code.models.LightningDiT(**official_kwargs(ours))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in official.named_parameters():
            if name != "pos_embed":
                param.add_(0.02 * torch.randn(param.shape, generator=generator))
    load_state_strict(ours, official.state_dict(), f"official {preset} built from the checkout")
    return ours.to(device).eval(), official.to(device).eval()


def benchmark_batch(model: LightningDiT, batch: int, device: torch.device, seed: int = 0):
    """A fixed (seeded) batch: latents, t, labels and noise x0."""
    c = model.config
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c.in_channels, c.input_size, c.input_size, generator=g)
    t = torch.rand(batch, generator=g)
    y = torch.randint(0, c.num_classes, (batch,), generator=g)
    x0 = torch.randn(x.shape, generator=g)
    return x.to(device), t.to(device), y.to(device), x0.to(device)


def _parity(ours: GeneratorSide, official: GeneratorSide, batch, parity_steps: int):
    """Exact-fp32 differences of the forward, the loss terms and a short guided Euler sample."""
    x, t, y, x0 = batch
    with torch.no_grad(), exact_fp32():
        forward = tensor_diffs({"v": ours.forward(x, t, y)}, {"v": official.forward(x, t, y)})
        loss = tensor_diffs(ours.loss_terms(x, y, t, x0), official.loss_terms(x, y, t, x0))
        sample = tensor_diffs(
            {"x": ours.sample(x0, y, parity_steps)}, {"x": official.sample(x0, y, parity_steps)}
        )
    return forward, loss, sample


def compare(
    subject: str,
    ours: GeneratorSide,
    official: GeneratorSide,
    batch,
    device: torch.device,
    precision: str,
    iters: int,
    warmup: int,
    sample_steps: int,
    parity_steps: int = 8,
    rtol: float = PARITY_RTOL,
) -> list[ComparisonRow]:
    """Parity first, then the forward, the sampler and the training step of both, timed."""
    forward_parity, loss_parity, sample_parity = _parity(ours, official, batch, parity_steps)
    x, t, y, x0 = batch
    n = len(x)
    phases = [
        Phase(
            "forward", n,
            ours=lambda: ours.forward(x, t, y), official=lambda: official.forward(x, t, y),
            ours_outputs=lambda: {"v": ours.forward(x, t, y)},
            official_outputs=lambda: {"v": official.forward(x, t, y)},
            parity=forward_parity,
        ),
        Phase(
            f"sample ({sample_steps} steps, cfg {CFG_SCALE:g})", n,
            ours=lambda: ours.sample(x0, y, sample_steps),
            official=lambda: official.sample(x0, y, sample_steps),
            ours_outputs=lambda: {"x": ours.sample(x0, y, parity_steps)},
            official_outputs=lambda: {"x": official.sample(x0, y, parity_steps)},
            parity=sample_parity,
        ),
    ]  # fmt: skip
    rows = time_phases(subject, phases, device, precision, iters, warmup, rtol)
    # Training last: it changes the weights of both sides.
    rows.append(
        training_row(
            subject, "train", training_step(ours, x, y), training_step(official, x, y), n,
            device, precision, iters, warmup, forward_parity + loss_parity,
            "random t, x0 and label dropout per step", rtol,
        )
    )  # fmt: skip
    return rows


def training_step(side: GeneratorSide, x: Tensor, y: Tensor) -> TrainingStep:
    """``side``'s training step on the fixed batch (x, y)."""
    return TrainingStep(side.model, lambda precision: side.train_step(x, y, precision))


def comparison_markdown(rows, device, batches, checkout, precision, sample_steps) -> str:
    """The same-run comparison as a markdown section."""
    anchors = ", ".join(f"{k} {v:g} img/s" for k, v in ANCHORS.items())
    lines = [
        f"### LightningDiT against the official code, same run, on {device_name(device)}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `benchmarks/bench_generators.py`; "
        f"{precision}; batches {batches}. Official code: {describe_checkout(checkout)}, outside "
        "the repository. The "
        "official model (random weights, every trained parameter perturbed) is loaded into ours, "
        "so both hold identical weights. Parity in exact fp32 (TF32 off) on the benchmark batch: "
        "the eval forward (v), the loss terms on a fixed (t, x0), and an 8-point guided Euler "
        f"sample (x); max |ours - official| / max |official| <= {PARITY_RTOL:g}, else the ratio "
        f"is withheld. Sampling: Euler, cfg {CFG_SCALE:g} from t = {CFG_INTERVAL_START:g}, shift "
        f"{TIMESTEP_SHIFT:g}, {sample_steps} grid points. Peak GiB: CUDA memory above the resident "
        "weights (and, for training, the optimiser state). Anchors (official code, H100, "
        f"training, issue 9): {anchors}.",
        "",
        *comparison_table(rows),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The sampler table
# --------------------------------------------------------------------------------------------


def train_tiny(steps: int = 400, seed: int = 0) -> LightningDiT:
    """lightningdit-tiny on 4-channel 4 x 4 latents (the side an f16 tokenizer gives at 64 px),
    4 classes, trained on 64 fixed latents: 4 class centres plus noise."""
    torch.manual_seed(seed)
    model = create_generator("lightningdit-tiny", input_size=4, in_channels=4, num_classes=4)
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(64) % 4
    centres = torch.randn(4, 4, 4, 4, generator=g)
    latents = centres[labels] + 0.3 * torch.randn(64, 4, 4, 4, generator=g)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, 64, (32,), generator=g)
        loss = flow_matching_loss(model, latents[index], labels[index], generator=g)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def sampler_table(
    model: LightningDiT, step_counts: list[int], reference_steps: int = 1000, batch: int = 8
) -> str:
    """Relative RMS distance of Euler and Heun samples from a ``reference_steps`` Heun sample,
    without guidance and with upstream's recipe (cfg from t = 0.1, shift 0.3)."""
    c = model.config
    noise = torch.randn(batch, c.in_channels, c.input_size, c.input_size,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    labels = torch.arange(batch) % c.num_classes
    settings = {
        "no guidance, shift 0.3": dict(timestep_shift=0.3),
        "cfg 4 from t = 0.1, shift 0.3": dict(
            cfg_scale=4.0, cfg_interval_start=0.1, timestep_shift=0.3
        ),
    }
    lines = [
        "| setting | grid points | Euler model calls | Euler rel. distance | Heun model calls | "
        "Heun rel. distance |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, kwargs in settings.items():
        reference = sample_flow(
            model, noise, labels, steps=reference_steps, method="heun", **kwargs
        )
        for steps in step_counts:
            cells = []
            for method in ("euler", "heun"):
                x = sample_flow(model, noise, labels, steps=steps, method=method, **kwargs)
                distance = (x - reference).square().mean().sqrt() / reference.square().mean().sqrt()
                calls = steps - 1 if method == "euler" else 2 * steps - 3
                cells += [str(calls), f"{distance.item():.2e}"]
            lines.append(f"| {name} | {steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sampler_markdown(table: str, train_steps: int, reference_steps: int) -> str:
    """The sampler table as a markdown section."""
    return (
        f"### Sampler error against step count, lightningdit-tiny on CPU\n\n{datetime.date.today()}"
        f", torch {torch.__version__}, `benchmarks/bench_generators.py --sampler-table`. "
        f"lightningdit-tiny (4 x 4 x 4 latents, 4 classes) trained {train_steps} steps on 64 fixed "
        "latents (4 class centres + noise); 8 samples from seeded noise; distance = RMS(x - ref) / "
        f"RMS(ref), ref = Heun at {reference_steps} grid points with the same settings. Model calls "
        "count forwards (a guided call runs 2N rows where t >= 0.1).\n\n" + table
    )


# Each family's official checkout under --official-root, and the flag that names it directly.
FAMILIES = {"lightningdit": CHECKOUT, "ldm": LDM_CHECKOUT, "var": VAR_CHECKOUT}
FLAGS = {"lightningdit": "lightningdit", "ldm": "latent_diffusion", "var": "var"}
# The precisions each family is timed in on a GPU (a CPU run times fp32).
GPU_PRECISIONS = {"lightningdit": ["bf16"], "ldm": ["fp32", "bf16"], "var": ["fp16", "bf16"]}
# Sampler steps: LightningDiT's Euler grid points, LDM's DDIM S.
SAMPLE_STEPS = {"lightningdit": 25, "ldm": 20}


def family_of(presets: list[str]) -> str:
    """The one generator family (``lightningdit``, ``ldm``, ``var``) that ``presets`` name.

    One family per run: LightningDiT's and VAR's official code both have a top-level package
    named ``models``, so they cannot share a process.
    """
    families = {preset.split("-", 1)[0] for preset in presets}
    if len(families) != 1 or not families <= set(FAMILIES):
        raise ValueError(
            f"presets {presets} must all be of one family: lightningdit-*, ldm-* or var-*"
        )
    return families.pop()


def checkout_of(family: str, given: str | None, official_root: str | None) -> str | None:
    """The official checkout of ``family``: its own flag, else ``official_root/<owner+name>``."""
    if given:
        return given
    return str(Path(official_root) / FAMILIES[family]) if official_root else None


def run_lightningdit(args: argparse.Namespace, device: torch.device, checkout: str) -> str:
    """The LightningDiT comparison of ``args.presets`` (fresh model pairs per precision).

    ``args`` is the command line with ``precisions`` and ``overrides`` (a dict) filled in by
    :func:`main`, as for :func:`run_ldm` and :func:`run_var`.
    """
    compiled = device.type == "cuda" and not args.no_compile
    code = official_lightningdit_code(checkout, compiled=compiled)
    steps = args.sample_steps or SAMPLE_STEPS["lightningdit"]
    rows = []
    for precision in args.precisions:
        for preset, batch in zip(args.presets, args.batch, strict=True):
            ours_model, official_model = paired_models(preset, code, device, **args.overrides)
            rows += compare(
                subject_name(preset, args.override), our_side(ours_model, compiled),
                official_side(code, official_model), benchmark_batch(ours_model, batch, device),
                device, precision, args.iters, args.warmup, steps,
            )  # fmt: skip
            del ours_model, official_model
            free_device_memory(device)
    precisions = " and ".join(args.precisions)
    return comparison_markdown(rows, device, args.batch, checkout, precisions, steps)


def run_ldm(args: argparse.Namespace, device: torch.device, checkout: str) -> str:
    """The LDM comparison of ``args.presets`` on ``args.latent_size`` latents."""
    code = official_ldm_code(checkout)
    use_autocast_safe_checkpoint(code)
    steps = args.sample_steps or SAMPLE_STEPS["ldm"]
    rows = []
    for preset, batch in zip(args.presets, args.batch, strict=True):
        ours, official = ldm.paired_models(preset, code, device, **args.overrides)
        rows += ldm.compare(
            subject_name(preset, args.override), ldm.our_side(ours),
            ldm.official_side(code, official),
            ldm.benchmark_batch(ours, batch, args.latent_size, device), device, args.precisions,
            args.iters, args.warmup, steps, args.sample_iters,
        )  # fmt: skip
        del ours, official
        free_device_memory(device)
    return ldm.comparison_markdown(rows, device, args.batch, args.latent_size, checkout, steps)


def run_var(args: argparse.Namespace, device: torch.device, checkout: str) -> str:
    """The VAR comparison of ``args.presets``, the official VQVAE of width ``args.vae_ch``.

    TF32 is on for both sides outside the parity check, as upstream's ``utils/arg_util.py``
    (``tf32=True``) sets it for training (its VQVAE encodes in float32 in the step as shipped).
    """
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    models = official_var_code(checkout)
    rows = []
    for preset, batch in zip(args.presets, args.batch, strict=True):
        config = preset_config(preset, **args.overrides)
        ours, tokenizer, vqvae, official = var.paired_models(models, config, args.vae_ch, device)
        recipe = var_training_recipe(preset)
        rows += var.compare(
            subject_name(preset, args.override), var.our_side(ours, tokenizer, recipe),
            var.official_side(checkout, vqvae, official, recipe, config.class_dropout),
            var.benchmark_batch(config, batch, device), device, args.precisions, args.iters,
            args.warmup, args.sample_iters, as_shipped=not args.no_as_shipped,
            top_k=min(var.TOP_K, config.vocab_size),
        )  # fmt: skip
        del ours, tokenizer, vqvae, official
        free_device_memory(device)
    return var.comparison_markdown(rows, device, args.batch, checkout, args.vae_ch)


def subject_name(preset: str, override: list[str]) -> str:
    """The preset, with its config overrides if any."""
    return preset + (f" ({', '.join(override)})" if override else "")


def free_device_memory(device: torch.device) -> None:
    """Hand cached CUDA memory back between presets (each pair is measured alone)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main() -> None:
    head, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        description=head, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=["lightningdit-xl-1", "lightningdit-b-1"])
    parser.add_argument("--batch", nargs="+", type=int, default=[128, 256], help="one per preset")
    parser.add_argument("--override", nargs="*", default=[], help="config overrides KEY=INT")
    parser.add_argument("--precision", nargs="+", choices=("bf16", "fp16", "fp32"), default=None)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--sample-steps", type=int, default=None, help="Euler points / DDIM S")
    parser.add_argument(
        "--sample-iters", type=int, default=3, help="timed sampler calls (LDM, VAR)"
    )
    parser.add_argument("--latent-size", type=int, default=64, help="LDM latent side")
    parser.add_argument("--vae-ch", type=int, default=160, help="width of VAR's official VQVAE")
    parser.add_argument(
        "--no-as-shipped", action="store_true", help="VAR: skip the step that encodes"
    )
    parser.add_argument("--no-compile", action="store_true", help="eager code on both sides")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--official-root", default=None, help="folder holding the checkouts")
    parser.add_argument("--lightningdit", default=None, help="checkout of hustvl/LightningDiT")
    parser.add_argument("--latent-diffusion", default=None, help="of CompVis/latent-diffusion")
    parser.add_argument("--var", default=None, help="checkout of FoundationVision/VAR")
    parser.add_argument("--sampler-table", action="store_true", help="write the sampler table")
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--append", default=None, help="append the markdown tables to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sampler_table:
        model = train_tiny(args.train_steps)
        steps = [8, 16, 32, 64, 128, 250]
        emit(sampler_markdown(sampler_table(model, steps), args.train_steps, 1000), args.append)
        return
    try:
        family = family_of(args.presets)
    except ValueError as error:
        parser.error(str(error))
    checkout = checkout_of(family, getattr(args, FLAGS[family]), args.official_root)
    if checkout is None:
        parser.error(
            f"give --official-root or the {FAMILIES[family]} checkout (or --sampler-table)"
        )
    if len(args.batch) != len(args.presets):
        parser.error("give one --batch per preset")
    gpu_precisions = GPU_PRECISIONS[family]
    args.precisions = args.precision or (gpu_precisions if device.type == "cuda" else ["fp32"])
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # the same for both sides
    args.overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.override)}
    run = {"lightningdit": run_lightningdit, "ldm": run_ldm, "var": run_var}[family]
    emit(run(args, device, checkout), args.append)


if __name__ == "__main__":
    main()
