"""The LDM part of benchmarks/bench_generators.py (generator_ldm.py) with our own UNet standing in
for the official code: an identical copy passes parity and gets a ratio, other weights fail it and
get none; the training row reports an official step that fails; the autocast-safe checkpoint that
replaces upstream's recomputes under the forward's autocast."""

import copy
from pathlib import Path

import benchlib
import generator_ldm as ldm
import official_code
import pytest
import torch

from freqlat.generators import create_generator

CPU = torch.device("cpu")


def _model(seed=0):
    torch.manual_seed(seed)
    model = create_generator("ldm-tiny", latent_channels=4, num_classes=4)
    ldm.perturb(model, seed + 1)
    return model.eval()


def _rows(official_model):
    ours = _model()
    return ldm.compare(
        "tiny", ldm.our_side(ours), ldm.our_side(official_model),
        ldm.benchmark_batch(ours, 2, 4, CPU), CPU, ["fp32"], iters=1, warmup=0, sample_steps=2,
        sample_iters=1, parity_steps=2,
    )  # fmt: skip


def test_an_identical_copy_passes_parity_and_gets_a_ratio():
    rows = _rows(copy.deepcopy(_model()))
    assert [row.measurement for row in rows] == [
        "forward fp32", "DDIM sample (S = 2, cfg 3) fp32", "train fp32"
    ]  # fmt: skip
    for row in rows:
        assert row.parity_ok and row.speedup is not None
        assert all(diff.max_abs == 0 for diff in row.parity)
    assert {d.name for d in rows[2].parity} == {"eps", "loss"}
    table = ldm.comparison_markdown(rows, CPU, [2], 4, "stand-in", 2)
    assert table.count("| tiny |") == 3 and "withheld:" not in table


def test_other_weights_fail_parity_and_withhold_the_ratio():
    rows = _rows(_model(seed=5))
    assert all(not row.parity_ok and row.speedup is None for row in rows)
    assert "withheld: parity failed" in ldm.comparison_markdown(rows, CPU, [2], 4, "x", 2)


def test_an_official_training_step_that_fails_is_reported_not_raised():
    model = _model()

    def failing(precision):
        def step():
            raise RuntimeError("expected m1 and m2 to have the same dtype\nmore")

        return step

    ours = ldm.our_side(model)
    x, _, y, _ = ldm.benchmark_batch(model, 2, 4, CPU)
    row = benchlib.training_row(
        "tiny", "train", benchlib.TrainingStep(model, lambda p: ours.train_step(x, y, p)),
        benchlib.TrainingStep(model, failing), 2, CPU, "fp32", 1, 0, [], "",
    )  # fmt: skip
    assert row.official_error == "RuntimeError: expected m1 and m2 to have the same dtype"
    assert row.speedup is None and not model.training


def test_the_autocast_safe_checkpoint_recomputes_under_the_forwards_autocast():
    layer = torch.nn.Linear(8, 8)
    seen = []

    def block(x):
        seen.append(torch.is_autocast_enabled("cpu"))
        return layer(x).relu()

    x = torch.randn(4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = official_code._autocast_safe_checkpoint(block, (x,), layer.parameters(), True)
    out.float().sum().backward()
    assert seen == [True, True] and out.dtype == torch.bfloat16
    grads = (x.grad.clone(), layer.weight.grad.clone())
    x.grad = layer.weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        block(x).float().sum().backward()
    torch.testing.assert_close(grads, (x.grad, layer.weight.grad))
    assert official_code._autocast_safe_checkpoint(block, (x,), (), False).requires_grad


def test_a_folder_without_the_official_ldm_code_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ldm/models/diffusion/ddpm\.py"):
        official_code.official_ldm_code(tmp_path)


def test_a_checkout_is_described_by_its_repository_and_commit(tmp_path):
    folder = tmp_path / "CompVis+latent-diffusion"
    folder.mkdir()
    assert official_code.describe_checkout(folder) == "CompVis/latent-diffusion at unknown"
    assert official_code.describe_checkout(tmp_path) == f"{tmp_path} at unknown"
    inside_a_repository = Path(__file__).parent
    assert official_code.checkout_commit(inside_a_repository) == "unknown"
