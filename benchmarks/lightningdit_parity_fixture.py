"""Write the fixture that pins freqlat's LightningDiT to the official code (outputs, not code).

Reads a checkout of hustvl/LightningDiT (never copied) and records, for three small LightningDiT
configurations (the release's flags at patch 1; patch 2 with qk-norm; every flag off with
``wo_shift``), on random weights (every trained parameter perturbed, so that no adaLN-Zero gate is
zero): the state dict, an input batch, the forward in eval mode and in training mode (label
dropout under a fixed global seed), and the Transport's training loss terms on a fixed (t, x0).
For the first configuration it also records ``Sampler.sample_ode(sampling_method="euler")`` driven
by ``forward_with_cfg`` (or ``forward`` at cfg 1) for several step counts, shifts, scales and CFG
intervals. The test ``packages/generators/tests/test_lightningdit_parity.py`` reads it.

Needs einops, torchdiffeq and scipy beside torch and timm (install them outside the project):

    uv run --no-sync python benchmarks/lightningdit_parity_fixture.py --checkout DIR \\
        [--out packages/generators/tests/fixtures/lightningdit_upstream.safetensors]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from official_code import official_euler_sampler, official_lightningdit_code
from safetensors.torch import save_file

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1]
    / "packages/generators/tests/fixtures/lightningdit_upstream.safetensors"
)
SIZE = dict(input_size=8, in_channels=6, hidden_size=16, depth=2, num_heads=2, num_classes=10)
RELEASE_FLAGS = dict(use_qknorm=False, use_swiglu=True, use_rope=True, use_rmsnorm=True)
CONFIGS = {
    "release": dict(SIZE, patch_size=1, wo_shift=False, **RELEASE_FLAGS),
    "patch2_qknorm": dict(SIZE, patch_size=2, wo_shift=False, **dict(RELEASE_FLAGS, use_qknorm=True)),
    "plain_wo_shift": dict(
        SIZE, patch_size=1, wo_shift=True, use_qknorm=True, use_swiglu=False, use_rope=False,
        use_rmsnorm=False,
    ),
}  # fmt: skip
# (steps, timestep_shift, cfg_scale, cfg_interval_start): upstream's recipe at few steps, no
# shift without guidance, guidance with and without an interval.
SAMPLINGS = [(10, 0.3, 4.0, 0.1), (6, 1.0, 1.0, 0.0), (25, 0.3, 10.0, 0.1), (8, 0.5, 3.0, 0.0)]
BATCH = 5
TRAIN_SEED = 3  # drops 2 of the 5 labels


def perturbed_official(code, config: dict, seed: int) -> torch.nn.Module:
    """The official model of ``config`` with every trained parameter perturbed (seeded)."""
    torch.manual_seed(seed)
    model = code.models.LightningDiT(**config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != "pos_embed":
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return model.eval()


def record_config(code, name: str, config: dict, seed: int) -> dict[str, torch.Tensor]:
    """State dict, inputs, eval/train forward and loss terms of one configuration."""
    model = perturbed_official(code, config, seed)
    g = torch.Generator().manual_seed(seed + 2)
    channels, size = config["in_channels"], config["input_size"]
    x = torch.randn(BATCH, channels, size, size, generator=g)
    t = torch.rand(BATCH, generator=g)
    y = torch.randint(0, config["num_classes"] + 1, (BATCH,), generator=g)
    x0 = torch.randn(x.shape, generator=g)
    out = {f"{name}/state/{k}": v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out[f"{name}/eval"] = model(x, t, y)
        model.train()
        torch.manual_seed(TRAIN_SEED)
        out[f"{name}/train"] = model(x, t, y)
        model.eval()
        transport = code.transport.create_transport(
            "Linear", "velocity", None, None, None, use_cosine_loss=True, use_lognorm=True
        )
        transport.sample = lambda x1, *args: (t, x0, x1)
        terms = transport.training_losses(model, x, dict(y=y))
    out[f"{name}/loss_mse"] = terms["loss"].mean().reshape(1)
    out[f"{name}/loss_cos"] = terms["cos_loss"].mean().reshape(1)
    out.update({f"{name}/x": x, f"{name}/t": t, f"{name}/y": y, f"{name}/x0": x0})
    return out


def record_sampling(code, config: dict, seed: int) -> dict[str, torch.Tensor]:
    """Upstream's Euler ODE samples of the perturbed release-flag model, one per setting."""
    model = perturbed_official(code, config, seed)
    out = {}
    for i, (steps, shift, cfg, start) in enumerate(SAMPLINGS):
        g = torch.Generator().manual_seed(100 + i)
        z = torch.randn(
            4, config["in_channels"], config["input_size"], config["input_size"], generator=g
        )
        y = torch.randint(0, config["num_classes"], (4,), generator=g)
        sample = official_euler_sampler(code, steps, shift)
        with torch.no_grad():
            if cfg > 1:
                null = torch.full_like(y, config["num_classes"])
                result = sample(
                    torch.cat([z, z]), model.forward_with_cfg, y=torch.cat([y, null]),
                    cfg_scale=cfg, cfg_interval=True, cfg_interval_start=start,
                )[-1][: len(z)]  # fmt: skip
            else:
                result = sample(z, model.forward, y=y)[-1]
        out.update({f"sample{i}/noise": z, f"sample{i}/labels": y, f"sample{i}/result": result})
    return out


def main() -> None:
    head, details = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        description=head, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkout", required=True, help="checkout of hustvl/LightningDiT")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    code = official_lightningdit_code(args.checkout, compiled=False)
    tensors = {}
    for seed, (name, config) in enumerate(CONFIGS.items()):
        tensors.update(record_config(code, name, config, 10 * seed))
    tensors.update(record_sampling(code, CONFIGS["release"], 0))
    metadata = {
        "configs": json.dumps(CONFIGS),
        "samplings": json.dumps(SAMPLINGS),
        "train_seed": str(TRAIN_SEED),
        "source": "hustvl/LightningDiT models/lightningdit.py, transport/ (benchmarks/lightningdit_parity_fixture.py)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, args.out, metadata=metadata)
    print(
        f"wrote {len(tensors)} tensors to {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB)"
    )


if __name__ == "__main__":
    main()
