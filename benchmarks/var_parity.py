"""VAR against the official code on identical random weights: teacher-forced logits and greedy tokens.

Builds FoundationVision/VAR's ``VAR`` (and the ``VQVAE`` whose quantiser it uses) from a checkout
given by path, fills every parameter of both with the same seeded noise, loads them into
``freqlat.generators.VAR`` and our ``MultiScaleResidualQuantizer``, and measures:

- the teacher-forcing input (``idxBl_to_var_input`` against ``teacher_forcing_inputs``) and the
  teacher-forced logits on random token maps: max |ours - official| (eval mode; the official
  model is built with ``cond_drop_rate=0`` because its ``forward`` drops labels in eval too);
- greedy generation (``top_k=1``): our ``generate`` against the official
  ``autoregressive_infer_cfg``, token by token, for each requested guidance scale, with the
  smallest top-1/top-2 gap of the guided logits (how close a wrong kernel would come to flipping
  a token).

``--write-manifest`` writes the key names and shapes of a preset's official state dict (the
test suite checks ours against ``packages/generators/tests/data/var-d16-keys.json``).
``--write-fixture`` stores the weights (rounded to float16 before either side sees them, so the
file is small and exact), the inputs and the official outputs of the two small configurations
the test suite replays (``packages/generators/tests/data/var_official_parity.safetensors``).
Nothing of the official code is in this repository: ``official_code.py`` imports it from the
checkout (``models/`` and ``dist.py``; its ``var.py`` imports ``huggingface_hub``).

Examples:
  python benchmarks/var_parity.py --official-root .official --write-fixture packages/generators/tests/data/var_official_parity.safetensors
  python benchmarks/var_parity.py --official-root .official --preset var-d16 --batch 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from types import ModuleType

import torch
from official_code import VAR_CHECKOUT, checkout_commit, official_var_code, official_var_pair
from safetensors.torch import save_file
from torch import Tensor, nn

from freqlat.generators import VAR, VARConfig, preset_config
from freqlat.tokenizers import MultiScaleResidualQuantizer
from freqlat.tokenizers.pretrained import load_state_strict

CHECKOUT = VAR_CHECKOUT

# The two configurations the committed fixture holds: the released models' kind of attention
# and AdaLN, and the other branches (shared AdaLN, unnormalised attention).
FIXTURE_CONFIGS = {
    "l2": VARConfig(
        depth=2, width=32, num_heads=2, num_classes=4, vocab_size=32, latent_channels=4,
        patch_sizes=(1, 2, 3, 4), drop_path_rate=0.1 * 2 / 24,
    ),
    "shared": VARConfig(
        depth=1, width=32, num_heads=2, num_classes=4, vocab_size=32, latent_channels=4,
        patch_sizes=(1, 2, 3, 4), drop_path_rate=0.0, attn_l2_norm=False, shared_adaln=True,
    ),
}  # fmt: skip
FIXTURE_CFGS = (0.0, 1.5)


def _quantizer_state(vqvae: nn.Module) -> dict[str, Tensor]:
    """The official quantiser's codebook and phi convs under our key names."""
    return {
        k.replace("quantize.quant_resi.qresi_ls.", "phi.").replace("quantize.", ""): v
        for k, v in vqvae.state_dict().items()
        if k.startswith(("quantize.embedding.", "quantize.quant_resi."))
    }


def randomize(modules: list[nn.Module], seed: int, half_exact: bool) -> None:
    """Fill every parameter with seeded noise that exercises every path.

    Weights get N(0, 1 / fan_in) (fan_in: the last dimension, or in x 3 x 3 for convs), vectors N(0, 0.1^2), the log attention scales log 4 + N(0, 0.1^2);
    the AdaLN and head scalings of the initialisation are undone so that no branch is
    negligible. ``half_exact`` rounds every value to float16 first.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for name, param in sorted(module.named_parameters()):
                noise = torch.randn(param.shape, generator=generator)
                if "scale_mul" in name:
                    value = torch.full(param.shape, 4.0).log() + 0.1 * noise
                elif param.ndim == 4 and "ada_gss" not in name:  # the phi convs
                    value = noise / param[0].numel() ** 0.5
                elif param.ndim >= 2:
                    value = noise / param.shape[-1] ** 0.5
                else:
                    value = 0.1 * noise
                param.copy_(value.half().float() if half_exact else value)


def paired_models(
    models: ModuleType, config: VARConfig, seed: int = 0, half_exact: bool = False
) -> tuple[VAR, nn.Module, nn.Module]:
    """(our VAR, official VQVAE, official VAR) on identical random weights, in eval mode."""
    vqvae, official = official_var_pair(models, config)
    randomize([official, vqvae.quantize], seed, half_exact)
    quantizer = MultiScaleResidualQuantizer(
        config.latent_channels, config.vocab_size, config.patch_sizes
    )
    load_state_strict(quantizer, _quantizer_state(vqvae), "official quantiser")
    ours = VAR(config, quantizer)
    load_state_strict(ours, official.state_dict(), "official VAR")
    return ours.eval(), vqvae.eval(), official.eval()


def random_inputs(config: VARConfig, batch: int, seed: int) -> tuple[Tensor, list[Tensor]]:
    """Labels and uniformly random per-scale token maps (N x pn^2) for a teacher-forced pass."""
    generator = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, config.num_classes, (batch,), generator=generator)
    indices = [
        torch.randint(0, config.vocab_size, (batch, pn * pn), generator=generator)
        for pn in config.patch_sizes
    ]
    return labels, indices


def official_greedy_tokens(
    vqvae: nn.Module, official: nn.Module, labels: Tensor, cfg: float
) -> list[Tensor]:
    """The official ``autoregressive_infer_cfg`` tokens (top_k=1), read off its codebook lookups."""
    captured: list[Tensor] = []
    hook = vqvae.quantize.embedding.register_forward_hook(
        lambda module, args, output: captured.append(args[0].clone())
    )
    try:
        official.autoregressive_infer_cfg(len(labels), labels, g_seed=0, cfg=cfg, top_k=1)
    finally:
        hook.remove()
    return captured


def ours_greedy_with_gap(ours: VAR, labels: Tensor, cfg: float) -> tuple[list[Tensor], float]:
    """Our greedy tokens and the smallest top-1 - top-2 gap of the guided logits, relative to
    the largest |logit|."""
    rows: list[Tensor] = []
    hook = ours.head.register_forward_hook(lambda module, args, output: rows.append(output))
    try:
        tokens = ours.generate(labels, cfg=cfg, top_k=1, top_p=0.0)
    finally:
        hook.remove()
    batch, last, gaps, peak = len(labels), len(rows) - 1, [], 0.0
    for scale, logits in enumerate(rows):
        t = cfg * (scale / last)
        guided = (1 + t) * logits[:batch] - t * logits[batch:]
        top2 = guided.topk(2, dim=-1).values
        gaps.append((top2[..., 0] - top2[..., 1]).min().item())
        peak = max(peak, guided.abs().max().item())
    return tokens, min(gaps) / peak


def measure(
    ours: VAR,
    vqvae: nn.Module,
    official: nn.Module,
    batch: int,
    seed: int = 0,
    cfgs: tuple[float, ...] = FIXTURE_CFGS,
) -> dict:
    """The parity figures (see the module docstring) and the tensors that produced them."""
    config = ours.config
    device = ours.head.weight.device
    labels, indices = random_inputs(config, batch, seed)
    labels, indices = labels.to(device), [idx.to(device) for idx in indices]
    with torch.no_grad():
        x_official = vqvae.quantize.idxBl_to_var_input(indices)
        x_ours = ours.teacher_forcing_inputs(indices)
        logits_official = official(labels, x_official)
        logits_ours = ours(labels, x_ours)
    figures = {
        "x_input_max_abs": (x_ours - x_official).abs().max().item(),
        "logits_max_abs": (logits_ours - logits_official).abs().max().item(),
        "logits_max": logits_official.abs().max().item(),
        "greedy": {},
    }
    tensors = {"labels": labels, "x_input": x_official, "logits": logits_official}
    tensors |= {f"indices.{k}": idx for k, idx in enumerate(indices)}
    generation_labels = labels.clone()
    generation_labels[-1] = config.num_classes  # one unconditional sample
    tensors["generation_labels"] = generation_labels
    for cfg in cfgs:
        theirs = official_greedy_tokens(vqvae, official, generation_labels, cfg)
        mine, gap = ours_greedy_with_gap(ours, generation_labels, cfg)
        differing = sum(int((a != b).sum()) for a, b in zip(mine, theirs, strict=True))
        figures["greedy"][str(cfg)] = {
            "tokens": sum(t.numel() for t in theirs),
            "differing": differing,
            "min_top2_gap_relative": gap,
        }
        tensors |= {f"tokens.cfg{cfg}.{k}": t for k, t in enumerate(theirs)}
    return {"figures": figures, "tensors": tensors}


def official_manifest(models: ModuleType, checkout: Path, preset: str) -> dict:
    """Key -> shape of the official state dict of ``preset`` (parameters and buffers)."""
    _, official = official_var_pair(models, preset_config(preset))
    return {
        "source": f"FoundationVision/VAR models/var.py at {checkout_commit(checkout)}, "
        f"shaped as build_vae_var(depth={official.depth})",
        "keys": {k: list(v.shape) for k, v in official.state_dict().items()},
    }


def write_fixture(models: ModuleType, checkout: Path, path: Path, batch: int = 3) -> dict:
    """Measure the two fixture configurations and store weights, inputs and official outputs."""
    tensors: dict[str, Tensor] = {}
    report = {}
    for name, config in FIXTURE_CONFIGS.items():
        ours, vqvae, official = paired_models(models, config, seed=0, half_exact=True)
        result = measure(ours, vqvae, official, batch)
        report[name] = result["figures"]
        weights = {f"var.{k}": v.half() for k, v in ours.named_parameters()}
        weights |= {f"quantizer.{k}": v.half() for k, v in ours.quantizer.named_parameters()}
        outputs = {f"io.{k}": v for k, v in result["tensors"].items()}
        tensors |= {f"{name}.{k}": v.detach().contiguous() for k, v in (weights | outputs).items()}
    metadata = {
        "configs": json.dumps({k: dataclasses.asdict(c) for k, c in FIXTURE_CONFIGS.items()}),
        "cfgs": json.dumps(FIXTURE_CFGS),
        "official_commit": checkout_commit(checkout),
        "made_by": "benchmarks/var_parity.py --write-fixture",
        "torch": torch.__version__,
        "figures": json.dumps(report),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: print the parity figures as JSON (and write the fixture when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-root", type=Path, help=f"folder holding {CHECKOUT}/")
    parser.add_argument("--var", type=Path, help="the FoundationVision/VAR checkout itself")
    parser.add_argument("--preset", help="a VAR preset to compare (default: the fixture configs)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--cfg", type=float, nargs="+", default=list(FIXTURE_CFGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write-fixture", type=Path)
    parser.add_argument("--write-manifest", type=Path, help="key/shape JSON of --preset's release")
    args = parser.parse_args(argv)
    checkout = args.var or (args.official_root / CHECKOUT if args.official_root else None)
    if checkout is None:
        parser.error("pass --official-root or --var")
    models = official_var_code(checkout)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    if args.write_manifest:
        manifest = official_manifest(models, checkout, args.preset or "var-d16")
        args.write_manifest.write_text(json.dumps(manifest, indent=1) + "\n")
        return 0
    if args.write_fixture:
        print(json.dumps(write_fixture(models, checkout, args.write_fixture), indent=1))
        return 0
    configs = {args.preset: preset_config(args.preset)} if args.preset else FIXTURE_CONFIGS
    report = {}
    for name, config in configs.items():
        ours, vqvae, official = paired_models(models, config, seed=args.seed)
        device = torch.device(args.device)
        ours.quantizer.to(device)
        ours, vqvae, official = ours.to(device), vqvae.to(device), official.to(device)
        result = measure(ours, vqvae, official, args.batch, args.seed, tuple(args.cfg))
        report[name] = result["figures"] | {"device": str(device), "batch": args.batch}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
