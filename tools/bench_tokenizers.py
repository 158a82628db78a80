"""Benchmark: encode/decode throughput, a full training step, and peak memory of each tokenizer.

For every preset (the paper sizes by default, at 256 px):
- encode and decode throughput in images/s under bf16 autocast (batch 64);
- one full training step with every loss term on: L1/NLL + LPIPS (VGG) + KL (or the VQ loss) +
  the hinge GAN with its adaptive weight (discriminator on from step 0) + VA-VAE's VF loss with a
  ViT-L/14 for VA-VAE and FA-VAE's low branch; the generator step and the discriminator step,
  each with its optimiser, in fp32 (the published recipe) and under bf16 autocast (batch 16);
- peak GPU memory of each phase.
LPIPS, the discriminator and the ViT get random weights: no timing depends on their values.

The anchors from the issue (official code, one H100) are printed beside ours; they were not
measured in this run, so their ratios are only indicative. Same-run ratios need the official code
installed beside ours.

    uv run --all-packages python tools/bench_tokenizers.py [--device cuda] [--presets ...] [--append benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import device_name, emit, sync  # a sibling module in tools/

from freqlat.metrics import LPIPS
from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.losses import FoundationFeatures, create_tokenizer_loss
from freqlat.tokenizers.types import DiagonalGaussian

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


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


def timed(fn, images: int, device: torch.device, iters: int) -> float:
    """Images/s of ``fn`` (one call handles ``images`` images), after two warm-up calls."""
    for _ in range(2):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return images * iters / (time.perf_counter() - start)


def latent_of(encoded) -> torch.Tensor:
    """The latent a decoder takes: the posterior mode (KL) or the quantised latent (VQ)."""
    return encoded.mode() if isinstance(encoded, DiagonalGaussian) else encoded.quantized


def foundation_vit(device: torch.device, small: bool) -> FoundationFeatures:
    """A random DINOv2-shaped ViT (ViT-L/14 at 224, or a tiny one for CPU smoke runs)."""
    import timm

    extra = {"embed_dim": 32, "depth": 1, "num_heads": 2} if small else {}
    name = "vit_small_patch14_dinov2" if small else "vit_large_patch14_dinov2"
    vit = timm.create_model(
        name, pretrained=False, img_size=224, dynamic_img_size=True, num_classes=0, **extra
    )
    return FoundationFeatures(vit).to(device)


def bench_preset(preset, device, size, batch, train_batch, iters, small) -> list[tuple]:
    """Rows ``(preset, measurement, img/s, peak GiB)`` for one preset."""
    rows = []
    model = create_tokenizer(preset).to(device)
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    model.eval()
    with torch.no_grad(), _autocast(device, True):
        z = latent_of(model.encode(x))
        _reset_peak(device)
        ips = timed(lambda: model.encode(x), batch, device, iters)
        rows.append((preset, "encode bf16", ips, _peak_gib(device)))
        _reset_peak(device)
        ips = timed(lambda: model.decode(z), batch, device, iters)
        rows.append((preset, "decode bf16", ips, _peak_gib(device)))

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
            terms = loss.generator_step(model, images, output, step=1)
        ae_opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        ae_opt.step()
        with _autocast(device, bf16):
            disc = loss.discriminator_step(images, output, step=1)
        disc_opt.zero_grad(set_to_none=True)
        disc["loss"].backward()
        disc_opt.step()

    _reset_peak(device)
    ips = timed(step, batch, device, iters)
    return ips, _peak_gib(device)


def _enable_gan_from_step_zero(loss) -> None:
    """Every loss term on from the first step: the discriminator starts at step 0."""
    for module in loss.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "disc_start"):
            config.disc_start = 0


def to_markdown(rows, device, size, batch, train_batch) -> str:
    name = device_name(device)
    lines = [
        f"### Tokenizers at {size} px on {name}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `tools/bench_tokenizers.py`; "
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=list(PAPER_PRESETS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--append", default=None, help="append the markdown table to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    small = all(p.endswith("-tiny") for p in args.presets)
    rows = []
    for preset in args.presets:
        rows += bench_preset(
            preset, device, args.size, args.batch, args.train_batch, args.iters, small
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
    table = to_markdown(rows, device, args.size, args.batch, args.train_batch)
    emit(table, args.append)


if __name__ == "__main__":
    main()
