"""The harness of benchmarks/bench_generators.py, with our own model standing in for the official
code (which is not in the repository): an identical copy passes parity and gets a ratio, a
perturbed copy fails it and gets none; the sampler table shows Heun closer than Euler."""

import pytest
import torch

from freqlat.generators import create_generator

SMALL = dict(input_size=4, in_channels=4, hidden_size=32, depth=1, num_heads=2, num_classes=4)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def bench():
    import bench_generators

    return bench_generators


def _model(seed=0):
    torch.manual_seed(seed)
    model = create_generator("lightningdit-tiny", **SMALL)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != "pos_embed":
                param.add_(0.05 * torch.randn(param.shape))
    return model.eval()


def _rows(bench, official_model):
    ours = _model()
    return bench.compare(
        "tiny", bench.our_side(ours), bench.our_side(official_model),
        bench.benchmark_batch(ours, 2, CPU), CPU, "fp32", iters=1, warmup=0, sample_steps=3,
        parity_steps=3,
    )  # fmt: skip


def test_an_identical_copy_passes_parity_and_gets_a_ratio(bench):
    rows = _rows(bench, _model())
    assert [row.measurement.split()[0] for row in rows] == ["forward", "sample", "train"]
    for row in rows:
        assert row.parity_ok and row.speedup is not None
        assert all(diff.max_abs == 0 for diff in row.parity)
    table = bench.comparison_markdown(rows, CPU, [2], "stand-in", "fp32", 3)
    assert table.count("| tiny |") == 3


def test_other_weights_fail_parity_and_withhold_the_ratio(bench):
    rows = _rows(bench, _model(seed=1))
    assert all(not row.parity_ok and row.speedup is None for row in rows)
    assert "withheld: parity failed" in bench.comparison_markdown(rows, CPU, [2], "x", "fp32", 3)


def test_sampler_table_has_a_row_per_setting_and_step_count(bench):
    table = bench.sampler_table(_model(), [4, 8], reference_steps=32, batch=2)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    euler, heun = (float(rows[1].split("|")[i]) for i in (4, 6))
    assert heun < euler
