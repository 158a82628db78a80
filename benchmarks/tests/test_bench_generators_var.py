"""The VAR part of benchmarks/bench_generators.py (generator_var.py) with our own VAR standing in
for the official code: an identical copy passes parity and gets a ratio, other weights fail it and
get none; the 'as shipped' row reuses our step's measurement and is printed as ungated; and the
command line keeps one family per run."""

import copy
import dataclasses

import bench_generators
import generator_var as var
import pytest
import torch

from freqlat.generators import create_generator, var_training_recipe
from freqlat.tokenizers import create_tokenizer

CPU = torch.device("cpu")
RECIPE = var_training_recipe("var-tiny")


@pytest.fixture(scope="module")
def tokenizer():
    torch.manual_seed(0)
    return create_tokenizer("ms-vq-vae-tiny").eval()


def _model(tokenizer, seed=0):
    torch.manual_seed(seed)
    return create_generator("var-tiny", tokenizer=tokenizer, depth=1, width=64, num_heads=2).eval()


def _rows(tokenizer, official_model, as_shipped=False):
    ours = _model(tokenizer)
    official = var.our_side(official_model, tokenizer, RECIPE)
    if as_shipped:  # a stand-in whose step ignores the images it would encode
        official = dataclasses.replace(
            official,
            train_step=lambda labels, indices, p, images=None: official_model_step(
                official_model, tokenizer, labels, indices, p
            ),
        )
    return var.compare(
        "tiny", var.our_side(ours, tokenizer, RECIPE), official,
        var.benchmark_batch(ours.config, 2, CPU), CPU, ["fp32"], iters=1, warmup=0,
        sample_iters=1, as_shipped=as_shipped, top_k=16,
    )  # fmt: skip


def official_model_step(model, tokenizer, labels, indices, precision):
    return var.our_side(model, tokenizer, RECIPE).train_step(labels, indices, precision)


def test_an_identical_copy_passes_parity_and_gets_a_ratio(tokenizer):
    rows = _rows(tokenizer, copy.deepcopy(_model(tokenizer)))
    assert [row.measurement.split()[0] for row in rows] == ["forward", "generate", "train"]
    for row in rows:
        assert row.parity_ok and row.speedup is not None
        assert all(diff.max_abs == 0 for diff in row.parity)
    names = [{d.name for d in row.parity} for row in rows]
    assert names == [{"x_input", "logits"}, {"tokens", "images"}, {"x_input", "logits", "ce"}]
    table = var.comparison_markdown(rows, CPU, [2], "stand-in", 32)
    assert table.count("| tiny |") == 3 and "withheld:" not in table


def test_other_weights_fail_parity_and_withhold_the_ratio(tokenizer):
    rows = _rows(tokenizer, _model(tokenizer, seed=3))
    assert all(not row.parity_ok and row.speedup is None for row in rows)
    assert "withheld: parity failed" in var.comparison_markdown(rows, CPU, [2], "x", 32)


def test_the_as_shipped_row_reuses_our_step_and_is_ungated(tokenizer):
    rows = _rows(tokenizer, copy.deepcopy(_model(tokenizer)), as_shipped=True)
    train, shipped = rows[-2:]
    assert shipped.measurement == "train as shipped (official encodes images) fp32"
    assert (shipped.ours_ips, shipped.ours_peak) == (train.ours_ips, train.ours_peak)
    assert shipped.parity == [] and shipped.parity_note and shipped.speedup is not None
    assert "(ungated)" in var.comparison_markdown([shipped], CPU, [2], "x", 32)


def test_our_training_step_refuses_images(tokenizer):
    side = var.our_side(_model(tokenizer), tokenizer, RECIPE)
    labels, indices, images = var.benchmark_batch(side.model.config, 1, CPU)
    with pytest.raises(ValueError, match="cached token maps"):
        side.train_step(labels, indices, "fp32", images)


def test_one_family_per_run_and_its_checkout():
    assert bench_generators.family_of(["var-d16", "var-tiny"]) == "var"
    with pytest.raises(ValueError, match="one family"):
        bench_generators.family_of(["var-d16", "lightningdit-b-1"])
    with pytest.raises(ValueError, match="one family"):
        bench_generators.family_of(["dit-xl"])
    assert bench_generators.checkout_of("ldm", None, "root") == "root/CompVis+latent-diffusion"
    assert bench_generators.checkout_of("var", "mine", "root") == "mine"
    assert bench_generators.checkout_of("var", None, None) is None
