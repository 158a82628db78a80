"""benchmarks/bench_generators.py's LDM and VAR comparisons against the official code itself, at a
tiny size: every row passes parity and the official code runs in every phase.

They need checkouts of CompVis/latent-diffusion and FoundationVision/VAR (``$FREQLAT_OFFICIAL_ROOT``
or ``.official/``), and for LDM omegaconf, einops and pytorch_lightning < 2; without them they
are skipped (the stand-in tests in test_bench_generators_ldm.py / _var.py always run).
"""

import importlib.util
import os
from pathlib import Path

import generator_ldm as ldm
import generator_var as var
import official_code
import pytest
import torch

from freqlat.generators import preset_config, var_training_recipe

ROOT = Path(
    os.environ.get("FREQLAT_OFFICIAL_ROOT", Path(__file__).resolve().parents[2] / ".official")
)
LDM = ROOT / official_code.LDM_CHECKOUT
VAR = ROOT / official_code.VAR_CHECKOUT
LDM_PACKAGES = ("omegaconf", "einops", "pytorch_lightning")
HAVE_LDM = (LDM / "ldm").is_dir() and all(importlib.util.find_spec(p) for p in LDM_PACKAGES)
HAVE_VAR = (VAR / "models" / "var.py").is_file()
CPU = torch.device("cpu")


@pytest.mark.skipif(not HAVE_LDM, reason=f"no CompVis/latent-diffusion at {LDM} or its packages")
def test_the_official_ldm_passes_parity_and_trains_under_bf16_autocast():
    code = official_code.official_ldm_code(LDM)
    official_code.use_autocast_safe_checkpoint(code)
    ours, official = ldm.paired_models("ldm-tiny", code, CPU, latent_channels=4, num_classes=4)
    batch = ldm.benchmark_batch(ours, 2, 4, CPU)
    side = ldm.official_side(code, official)
    rows = ldm.compare(
        "tiny", ldm.our_side(ours), side, batch, CPU, ["fp32"], iters=1, warmup=0,
        sample_steps=2, sample_iters=1, parity_steps=2,
    )  # fmt: skip
    assert all(row.parity_ok and row.official_ips is not None for row in rows)
    assert all(d.relative < 1e-5 for row in rows for d in row.parity)
    official.train()
    side.train_step(batch[0], batch[2], "bf16")()  # upstream's own checkpoint fails here


@pytest.mark.skipif(not HAVE_VAR, reason=f"no FoundationVision/VAR checkout at {VAR}")
def test_the_official_var_passes_parity_in_every_phase():
    models = official_code.official_var_code(VAR)
    config = preset_config("var-tiny", depth=1, width=64, num_heads=2)
    ours, tokenizer, vqvae, official = var.paired_models(models, config, 32, CPU)
    recipe = var_training_recipe("var-tiny")
    rows = var.compare(
        "tiny", var.our_side(ours, tokenizer, recipe),
        var.official_side(VAR, vqvae, official, recipe, config.class_dropout),
        var.benchmark_batch(config, 2, CPU), CPU, ["fp32"], iters=1, warmup=0, sample_iters=1,
        top_k=16,
    )  # fmt: skip
    assert [row.measurement.split()[0] for row in rows] == ["forward", "generate", "train", "train"]
    assert all(row.parity_ok and row.official_ips is not None for row in rows)
    assert all(d.max_abs == 0 for d in rows[0].parity)
    assert official.cond_drop_rate == 0.0  # restored after upstream's training steps
