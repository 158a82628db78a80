"""Benchmark: encode/decode throughput, a full training step, and peak memory of each tokenizer.

For every preset (the paper sizes by default, at 256 px):
- encode and decode throughput in images/s under bf16 autocast (batch 64; fp32 by default on a
  CPU, where bf16 autocast is emulated and orders of magnitude slower);
- one full training step with every loss term on: L1/NLL + LPIPS (VGG) + KL (or the VQ loss) +
  the hinge GAN with its adaptive weight (discriminator on from step 0) + VA-VAE's VF loss with a
  ViT-L/14 for VA-VAE and FA-VAE's low branch; the generator step and the discriminator step,
  each with its optimiser, in fp32 (the published recipe) and under bf16 autocast (batch 16);
- peak GPU memory of each phase.
LPIPS, the discriminator and the ViT get random weights: no timing depends on their values.

The anchors from the issue (official code, one H100) are printed beside ours; they were not
measured in this run, so their ratios are only indicative.

Same-run comparison with the official code: ``--official-root DIR`` names a folder holding
checkouts ``hustvl+LightningDiT``, ``LTH14+mar`` and ``FoundationVision+VAR`` (or pass each with
``--lightningdit``, ``--mar``, ``--var``). The official code is imported from there at run time,
never copied. For va-vae-f16d32, kl-vae-f16d16 and ms-vq-vae the official model is built (random
weights, GroupNorm affines perturbed), its state dict is loaded into ours with
``map_official_state``, and on the benchmark batch the script checks parity in exact fp32 (TF32
off) before it times encode and decode of both, in the same harness, one after the other. The
speed-up is printed only where parity holds. VAR's encode is its ``img_to_idxBl`` and its
decode ``decoder(post_quant_conv(f_hat))`` (unclamped, as ours); its quantiser fails under bf16
autocast, which the table reports.

The official VA-VAE training step is timed beside ours when a CompVis/taming-transformers
checkout is also given (``--taming``, or ``CompVis+taming-transformers`` under the root): the
body of LightningDiT's vavae ``training_step`` (L1 + LPIPS + KL + GAN + VF loss with a DINOv2
ViT-L/14; generator and discriminator steps) without Lightning; see
:func:`official_vavae_trainer` for what is stood in for. These rows are ungated: no parity
check covers the step in this run.

    uv run --all-packages python benchmarks/bench_tokenizers.py [--device cuda] [--presets ...] [--append benchmarks/RESULTS.md]
    uv run --all-packages python benchmarks/bench_tokenizers.py --official-root DIR --no-train \\
        --presets va-vae-f16d32 kl-vae-f16d16 ms-vq-vae [--precision bf16 fp32]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from benchlib import (
    INDEX_MISMATCH_TOL,
    PARITY_RTOL,
    ComparisonRow,
    Phase,
    comparison_table,
    device_name,
    emit,
    exact_fp32,
    precision_context,
    tensor_diffs,
    throughput_and_peak,
    time_phases,
)
from official_code import (
    OFFICIAL_MODELS,
    TAMING_CHECKOUT,
    TRAINING_PARITY_NOTE,
    Side,
    flat_indices,
    official_checkouts,
    official_training_checkout,
    official_vavae_trainer,
    paired_models,
)
from torch import Tensor, nn

from freqlat.metrics import LPIPS
from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.losses import FoundationFeatures, create_tokenizer_loss

PAPER_PRESETS = ("kl-vae-f16d16", "ms-vq-vae", "va-vae-f16d32", "fa-vae-f16d64", "fa-vae-f16d32")

# Official code on one H100 (issue 4): img/s.
ANCHORS = {
    ("va-vae-f16d32", "encode bf16"): 643.0,
    ("va-vae-f16d32", "decode bf16"): 388.0,
    ("va-vae-f16d32", "train fp32"): 37.4,
    ("va-vae-f16d32", "train bf16"): 48.5,
    ("fa-vae-f16d64", "train fp32"): 30.3,
    ("fa-vae-f16d64", "train bf16"): 38.3,
}


def _autocast(device: torch.device, enabled: bool):
    return precision_context(device, "bf16" if enabled else "fp32")


def foundation_vit(device: torch.device, small: bool) -> FoundationFeatures:
    """A random DINOv2-shaped ViT (ViT-L/14 at 224, or a tiny one for CPU smoke runs)."""
    import timm

    extra = {"embed_dim": 32, "depth": 1, "num_heads": 2} if small else {}
    name = "vit_small_patch14_dinov2" if small else "vit_large_patch14_dinov2"
    vit = timm.create_model(
        name, pretrained=False, img_size=224, dynamic_img_size=True, num_classes=0, **extra
    )
    return FoundationFeatures(vit).to(device)


def benchmark_images(batch: int, size: int, device: torch.device) -> Tensor:
    """A fixed (seeded) batch of uniform images in [-1, 1]."""
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)


def bench_preset(
    preset: str,
    device: torch.device,
    size: int,
    batch: int,
    train_batch: int,
    iters: int,
    small: bool,
    precision: str = "bf16",
    warmup: int = 2,
    encode_decode: bool = True,
    train: bool = True,
) -> list[tuple]:
    """Rows ``(preset, measurement, img/s, peak GiB)`` for one preset: encode and decode at
    ``precision`` (when ``encode_decode``), the training step in fp32 and bf16 (when ``train``)."""
    rows = []
    if not (encode_decode or train):
        return rows
    model = create_tokenizer(preset).to(device)
    if encode_decode:
        x = benchmark_images(batch, size, device)
        model.eval()
        with torch.no_grad(), _autocast(device, precision == "bf16"):
            z = model.encode_latent(x, sample=False)
            for what, call in (
                ("encode", lambda: model.encode(x)),
                ("decode", lambda: model.decode(z)),
            ):
                ips, peak = throughput_and_peak(
                    call, batch, device, iters, warmup, above_base=False
                )
                rows.append((preset, f"{what} {precision}", ips, peak))
    if train:
        for bf16 in (False, True):
            ips, peak = training_step_throughput(
                model, device, size, train_batch, max(1, iters // 2), small, bf16
            )
            rows.append((preset, f"train {'bf16' if bf16 else 'fp32'}", ips, peak))
    return rows


def training_step_throughput(
    model,
    device: torch.device,
    size: int,
    batch: int,
    iters: int,
    small: bool,
    bf16: bool,
    use_vf: bool | None = None,
) -> tuple[float, float | None]:
    """Images/s and peak GiB of the bare training step of ``model`` on one fixed batch.

    Generator step (every loss term on, GAN from step 0; the VF loss where the preset uses it,
    unless ``use_vf`` says otherwise) and discriminator step, each with its Adam optimiser, in
    fp32 or under bf16 autocast; no data loading, no EMA.
    """
    model.train()
    perceptual = LPIPS("vgg", pretrained=False, check_range=False).to(device)
    foundation = foundation_vit(device, small) if use_vf is not False else None
    loss = create_tokenizer_loss(
        model, perceptual=perceptual, foundation=foundation, use_vf=use_vf
    ).to(device)
    _enable_gan_from_step_zero(loss)
    ae_opt = torch.optim.Adam(
        [*model.parameters(), *loss.autoencoder_parameters()], lr=1e-4, betas=(0.5, 0.9)
    )
    disc_opt = torch.optim.Adam(loss.discriminator_parameters(), lr=1e-4, betas=(0.5, 0.9))
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1

    def step():
        with _autocast(device, bf16):
            output = model(images)
            terms = loss.autoencoder_step(model, images, output, step=1)
        ae_opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        ae_opt.step()
        with _autocast(device, bf16):
            disc = loss.discriminator_step(images, output, step=1)
        disc_opt.zero_grad(set_to_none=True)
        disc["loss"].backward()
        disc_opt.step()

    return throughput_and_peak(step, batch, device, iters, above_base=False)


def _enable_gan_from_step_zero(loss) -> None:
    """Every loss term on from the first step: the discriminator starts at step 0."""
    for module in loss.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "disc_start"):
            config.disc_start = 0


# --------------------------------------------------------------------------------------------
# Same-run comparison with an official implementation
# --------------------------------------------------------------------------------------------


def _is_vq(model: nn.Module) -> bool:
    return hasattr(model, "encode_indices")  # a VQ tokenizer's part of the latent contract


def named_encode_outputs(model: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """Our encoding of ``x`` as named tensors: a VQ model's token indices and quantised latent,
    or a KL model's posterior mean and log-variance."""
    if _is_vq(model):
        return {
            "indices": flat_indices(model.encode_indices(x)),
            "latent": model.encode_latent(x, sample=False),
        }
    posterior = model.encode(x)
    return {"mean": posterior.mean, "logvar": posterior.logvar}


def our_side(model: nn.Module) -> Side:
    """A freqlat tokenizer as a :class:`Side`."""
    return Side(
        encode=model.encode,
        decode=model.decode,
        encode_outputs=lambda x: named_encode_outputs(model, x),
        latent_key="latent" if _is_vq(model) else "mean",
    )


def compare_sides(
    preset: str,
    ours: Side,
    official: Side,
    images: Tensor,
    device: torch.device,
    precisions: Sequence[str] = ("bf16",),
    iters: int = 10,
    warmup: int = 2,
    rtol: float = PARITY_RTOL,
    index_tol: float = INDEX_MISMATCH_TOL,
) -> list[ComparisonRow]:
    """Parity, then throughput, of encode and decode of two implementations on ``images``.

    Parity is checked once in exact fp32 (TF32 off): encode outputs on ``images``, and decode
    outputs on our fp32 latent of them, fed to both decoders. Then, under each of
    ``precisions`` (``bf16`` autocast, ``fp32``), each call is timed for ours and then the
    official one (:func:`benchlib.time_phases`). Rows carry the speed-up only where parity holds.
    """
    for precision in precisions:
        precision_context(device, precision)  # an unknown precision fails before any work
    with torch.no_grad(), exact_fp32():
        ours_encoded = ours.encode_outputs(images)
        encode_parity = tensor_diffs(ours_encoded, official.encode_outputs(images))
        latent = ours_encoded[ours.latent_key]
        del ours_encoded
        decode_parity = tensor_diffs(
            {"image": ours.decode(latent)}, {"image": official.decode(latent)}
        )
    phases = [
        Phase(
            "encode",
            len(images),
            ours=lambda: ours.encode(images),
            official=lambda: official.encode(images),
            ours_outputs=lambda: ours.encode_outputs(images),
            official_outputs=lambda: official.encode_outputs(images),
            parity=encode_parity,
        ),
        Phase(
            "decode",
            len(images),
            ours=lambda: ours.decode(latent),
            official=lambda: official.decode(latent),
            ours_outputs=lambda: {"image": ours.decode(latent)},
            official_outputs=lambda: {"image": official.decode(latent)},
            parity=decode_parity,
        ),
    ]
    return [
        row
        for precision in precisions
        for row in time_phases(preset, phases, device, precision, iters, warmup, rtol, index_tol)
    ]


def comparison_markdown(
    rows: list[ComparisonRow],
    device: torch.device,
    size: int,
    batch: int,
    checkouts: dict[str, Path],
    rtol: float = PARITY_RTOL,
    index_tol: float = INDEX_MISMATCH_TOL,
) -> str:
    """The same-run comparison as a markdown section: one row per preset and phase."""
    sources = ", ".join(f"{preset}: `{path}`" for preset, path in checkouts.items())
    lines = [
        f"### Tokenizers against the official code, same run, at {size} px on "
        f"{device_name(device)}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `benchmarks/bench_tokenizers.py "
        f"--official-root`; batch {batch}. Official code imported from {sources or 'nowhere'}. "
        "Each official model (random weights, GroupNorm affines perturbed) is loaded into ours "
        "with `map_official_state`, so both hold identical weights. Parity is checked in exact "
        f"fp32 (TF32 off) on the benchmark batch: max |ours - official| / max |official| <= "
        f"{rtol:g} for every output, and at most {index_tol:.1%} of token indices differing; the "
        "speed-up is withheld where it fails. Peak GiB: CUDA memory above the resident weights "
        "and inputs. Training rows (if any): LightningDiT's vavae training step driven without "
        "Lightning, taming-transformers beside it, each model alone on the device, peak of the "
        "whole step; ungated, as no same-run parity check covers the step.",
        "",
        *comparison_table(rows),
    ]
    return "\n".join(lines) + "\n"


def compare_preset(
    preset: str,
    checkout: Path,
    device: torch.device,
    size: int,
    batch: int,
    precisions: Sequence[str],
    iters: int,
    warmup: int,
    rtol: float = PARITY_RTOL,
) -> list[ComparisonRow]:
    """Same-run comparison of our ``preset`` with its official code from ``checkout``."""
    ours, official = paired_models(preset, checkout, device)
    rows = compare_sides(
        preset,
        our_side(ours),
        OFFICIAL_MODELS[preset].side(official),
        benchmark_images(batch, size, device),
        device,
        precisions,
        iters,
        warmup,
        rtol,
    )
    del ours, official
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def official_training_throughput(
    lightningdit: Path,
    taming: Path,
    device: torch.device,
    size: int,
    batch: int,
    iters: int,
    small: bool,
    bf16: bool,
) -> tuple[float, float | None]:
    """Images/s and peak GiB of the official VA-VAE training step on one fixed batch."""
    step = official_vavae_trainer(lightningdit, taming, device, small)
    images = benchmark_images(batch, size, device)
    return throughput_and_peak(lambda: step(images, bf16), batch, device, iters, above_base=False)


def compare_training(
    lightningdit: Path,
    taming: Path,
    device: torch.device,
    size: int,
    batch: int,
    iters: int,
    small: bool,
    precisions: Sequence[str] = ("fp32", "bf16"),
) -> list[ComparisonRow]:
    """Our va-vae-f16d32 training step (every loss term on) against the official one, under
    each of ``precisions``, each model alone on the device; peak GiB is the whole step's."""
    rows = []
    for bf16 in (precision == "bf16" for precision in precisions):
        model = create_tokenizer("va-vae-f16d32").to(device)
        ours_ips, ours_peak = training_step_throughput(
            model, device, size, batch, max(1, iters // 2), small, bf16
        )
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
        official_ips = official_peak = error = None
        try:
            official_ips, official_peak = official_training_throughput(
                lightningdit, taming, device, size, batch, max(1, iters // 2), small, bf16
            )
        except (ImportError, RuntimeError) as failure:  # reported in the table, not fatal
            error = f"{type(failure).__name__}: {str(failure).splitlines()[0]}"
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append(
            ComparisonRow(
                subject="va-vae-f16d32",
                measurement=f"train {'bf16' if bf16 else 'fp32'}",
                ours_ips=ours_ips,
                official_ips=official_ips,
                ours_peak=ours_peak,
                official_peak=official_peak,
                parity=[],
                parity_ok=True,
                timed_diff="",
                official_error=error,
                parity_note=TRAINING_PARITY_NOTE,
            )
        )
    return rows


def to_markdown(rows, device, size, batch, train_batch) -> str:
    """Our measurements as a markdown section, with the issue's anchors beside them."""
    name = device_name(device)
    lines = [
        f"### Tokenizers at {size} px on {name}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `benchmarks/bench_tokenizers.py`; "
        f"encode/decode batch {batch}, training step batch {train_batch} (generator + "
        "discriminator step, every loss term on). Anchors: official code on one H100 (issue 4), "
        "not measured in this run.",
        "",
        "| preset | measurement | img/s | peak GiB | anchor img/s | vs anchor |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for preset, what, ips, peak in rows:
        anchor = ANCHORS.get((preset, what))
        lines.append(
            f"| {preset} | {what} | {ips:.1f} | {'' if peak is None else f'{peak:.2f}'} | "
            f"{'' if anchor is None else f'{anchor:.1f}'} | "
            f"{'' if anchor is None else f'{ips / anchor:.2f}x'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    head, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        description=head, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=list(PAPER_PRESETS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=("bf16", "fp32"),
        default=None,
        help="encode/decode precision(s) (default: bf16 autocast on CUDA, fp32 on a CPU)",
    )
    parser.add_argument("--no-train", action="store_true", help="skip the training steps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--official-root",
        default=None,
        help="folder with official checkouts "
        + ", ".join(spec.checkout for spec in OFFICIAL_MODELS.values())
        + ": compare with them in the same run",
    )
    for spec in OFFICIAL_MODELS.values():
        parser.add_argument(
            f"--{spec.flag}",
            default=None,
            help=f"checkout of {spec.checkout.replace('+', '/')} (overrides --official-root)",
        )
    parser.add_argument(
        "--taming",
        default=None,
        help=f"checkout of CompVis/taming-transformers for the official VA-VAE training step "
        f"(default: OFFICIAL_ROOT/{TAMING_CHECKOUT} when it exists)",
    )
    parser.add_argument(
        "--parity-rtol", type=float, default=PARITY_RTOL, help="fp32 parity gate (relative)"
    )
    parser.add_argument("--append", default=None, help="append the markdown tables to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = args.precision or ["bf16" if device.type == "cuda" else "fp32"]
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_flush_denormal(True)  # the same for both sides; random weights hit denormals
    checkouts = official_checkouts(
        args.presets,
        args.official_root,
        {s.flag: getattr(args, s.flag) for s in OFFICIAL_MODELS.values()},
    )
    taming = official_training_checkout(args.taming, args.official_root)
    compare_train = not args.no_train and "va-vae-f16d32" in checkouts and taming is not None
    if not args.no_train and "va-vae-f16d32" in checkouts and taming is None:
        print(
            f"no {TAMING_CHECKOUT} checkout (--taming): the official training step is not timed",
            file=sys.stderr,
        )
    small = all(p.endswith("-tiny") for p in args.presets)
    rows, comparisons = [], []
    for preset in args.presets:
        if preset in checkouts:
            comparisons += compare_preset(
                preset, checkouts[preset], device, args.size, args.batch, precisions,
                args.iters, args.warmup, args.parity_rtol,
            )  # fmt: skip
        else:
            for precision in precisions:
                rows += bench_preset(
                    preset, device, args.size, args.batch, args.train_batch, args.iters, small,
                    precision=precision, warmup=args.warmup, train=False,
                )  # fmt: skip
        if compare_train and preset == "va-vae-f16d32":
            comparisons += compare_training(
                checkouts[preset], taming, device, args.size, args.train_batch, args.iters, small,
                ("fp32", "bf16") if device.type == "cuda" else ("fp32",),  # CPU bf16 is emulated
            )  # fmt: skip
        elif not args.no_train:
            rows += bench_preset(
                preset, device, args.size, args.batch, args.train_batch, args.iters, small,
                encode_decode=False,
            )  # fmt: skip
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if comparisons:
        emit(
            comparison_markdown(
                comparisons, device, args.size, args.batch, checkouts, args.parity_rtol
            ),
            args.append,
        )
    if rows:
        emit(to_markdown(rows, device, args.size, args.batch, args.train_batch), args.append)


if __name__ == "__main__":
    main()
