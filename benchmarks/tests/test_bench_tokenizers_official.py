"""The same-run comparison harness of benchmarks/bench_tokenizers.py, with stand-ins for the official
code (which is not in the repository): a copy of our model must pass parity and get a speed-up,
a perturbed copy must fail parity and get none, and an official call that fails is reported."""

import copy
import math

import bench_tokenizers  # benchmarks/ is on sys.path (pytest's pythonpath setting)
import benchlib as benchmark_helpers
import official_code
import pytest
import torch

from freqlat.tokenizers import create_tokenizer


@pytest.fixture(scope="module")
def bench():
    return bench_tokenizers


@pytest.fixture(scope="module")
def official():
    return official_code


@pytest.fixture(scope="module")
def benchlib():
    return benchmark_helpers


def _model(preset):
    torch.manual_seed(0)
    return create_tokenizer(preset).eval()


CASES = {"kl-vae-f16d16-tiny": 32, "ms-vq-vae-tiny": 64}
CPU = torch.device("cpu")


@pytest.mark.parametrize("preset", sorted(CASES))
def test_identical_copy_passes_parity_and_gets_a_speedup(bench, preset):
    model = _model(preset)
    images = bench.benchmark_images(2, CASES[preset], CPU)
    rows = bench.compare_sides(
        preset,
        bench.our_side(model),
        bench.our_side(copy.deepcopy(model)),
        images,
        CPU,
        precisions=["fp32"],
        iters=1,
        warmup=0,
    )
    assert [row.measurement for row in rows] == ["encode fp32", "decode fp32"]
    for row in rows:
        assert row.parity_ok and row.official_error is None
        assert all(diff.max_abs == 0 for diff in row.parity)
        assert row.speedup == pytest.approx(row.ours_ips / row.official_ips)
    names = {diff.name for diff in rows[0].parity}
    assert names == ({"indices", "latent"} if "vq" in preset else {"mean", "logvar"})
    table = bench.comparison_markdown(rows, CPU, CASES[preset], 2, {})
    assert table.count(f"| {preset} |") == 2
    assert f"{rows[0].speedup:.2f}x" in table and "withheld:" not in table


def test_perturbed_copy_fails_parity_and_the_speedup_is_withheld(bench):
    model = _model("kl-vae-f16d16-tiny")
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.decoder.conv_out.bias.add_(0.05)  # the decoder only: encode parity still holds
    rows = bench.compare_sides(
        "kl-vae-f16d16-tiny",
        bench.our_side(model),
        bench.our_side(other),
        bench.benchmark_images(2, 32, CPU),
        CPU,
        precisions=["fp32"],
        iters=1,
        warmup=0,
    )
    encode, decode = rows
    assert encode.parity_ok and encode.speedup is not None
    assert not decode.parity_ok and decode.speedup is None
    assert decode.parity[0].max_abs == pytest.approx(0.05, rel=1e-4)
    table = bench.comparison_markdown(rows, CPU, 32, 2, {})
    decode_line = next(line for line in table.splitlines() if "| decode fp32 |" in line)
    assert decode_line.split(" | ")[4] == "withheld: parity failed"
    assert "(FAILED)" in decode_line


def test_a_looser_tolerance_admits_the_same_difference(bench):
    model = _model("kl-vae-f16d16-tiny")
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.decoder.conv_out.bias.add_(1e-3)
    rows = bench.compare_sides(
        "t",
        bench.our_side(model),
        bench.our_side(other),
        bench.benchmark_images(1, 32, CPU),
        CPU,
        precisions=["fp32"],
        iters=1,
        warmup=0,
        rtol=1.0,
    )
    assert rows[1].parity_ok and rows[1].speedup is not None


def test_kl_adapter_of_the_official_api_matches_our_side(bench, official):
    """``_kl_side`` drives an LDM-style ``encode -> posterior(.mean, .logvar)`` / ``decode``."""
    model = _model("va-vae-f16d32-tiny")
    rows = bench.compare_sides(
        "va-vae-f16d32-tiny",
        bench.our_side(model),
        official._kl_side(copy.deepcopy(model)),
        bench.benchmark_images(1, 32, CPU),
        CPU,
        precisions=["fp32"],
        iters=1,
        warmup=0,
    )
    assert all(row.parity_ok and row.speedup is not None for row in rows)


def test_official_failure_at_timed_precision_is_reported_not_fatal(bench, official):
    model = _model("kl-vae-f16d16-tiny")
    copy_side = bench.our_side(copy.deepcopy(model))

    def fails_under_autocast(x):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("mat1 and mat2 must have the same dtype\nsecond line")
        return copy_side.encode_outputs(x)

    stand_in = official.Side(
        encode=copy_side.encode,
        decode=copy_side.decode,
        encode_outputs=fails_under_autocast,
        latent_key="mean",
    )
    rows = bench.compare_sides(
        "kl-vae-f16d16-tiny",
        bench.our_side(model),
        stand_in,
        bench.benchmark_images(1, 16, CPU),
        CPU,
        precisions=["fp32", "bf16"],
        iters=1,
        warmup=0,
    )
    assert [row.measurement for row in rows] == [
        "encode fp32", "decode fp32", "encode bf16", "decode bf16"
    ]  # fmt: skip
    assert rows[0].official_error is None and rows[0].speedup is not None
    encode, decode = rows[2:]
    assert encode.parity_ok  # fp32 parity ran outside autocast
    assert encode.official_error == "RuntimeError: mat1 and mat2 must have the same dtype"
    assert encode.official_ips is None and encode.speedup is None
    assert decode.official_error is None and decode.speedup is not None
    table = bench.comparison_markdown(rows[2:], CPU, 16, 1, {})
    assert "fails: RuntimeError: mat1 and mat2 must have the same dtype" in table
    assert "official failed" in table


def test_comparison_row_speedup_is_ours_over_official_only_when_parity_holds(bench):
    row = bench.ComparisonRow("p", "encode bf16", 300.0, 100.0, None, None, [], True, "")
    assert row.speedup == 3.0
    assert bench.ComparisonRow("p", "m", 300.0, 100.0, None, None, [], False, "").speedup is None
    assert bench.ComparisonRow("p", "m", 300.0, None, None, None, [], True, "").speedup is None


def test_tensor_diffs_measure_floats_relatively_and_count_differing_indices(benchlib):
    ref = {"x": torch.tensor([2.0, -4.0]), "i": torch.tensor([1, 2, 3, 4])}
    ours = {"x": torch.tensor([2.0, -3.9]), "i": torch.tensor([1, 2, 0, 4])}
    x, i = benchlib.tensor_diffs(ours, ref)
    assert x.max_abs == pytest.approx(0.1, rel=1e-5) and x.relative == pytest.approx(
        0.025, rel=1e-5
    )
    assert x.within(0.03, 0.0) and not x.within(0.02, 1.0)
    assert (i.max_abs, i.relative, i.integer) == (1, 0.25, True)
    assert i.within(1.0, 0.25) and not i.within(1.0, 0.2)
    assert str(i) == "i 1/4 differ"
    (bad,) = benchlib.tensor_diffs({"x": torch.zeros(3)}, {"x": torch.zeros(2)})
    assert math.isinf(bad.relative) and not bad.within(1e9, 1e9)
    with pytest.raises(ValueError, match="differ in names"):
        benchlib.tensor_diffs({"x": torch.zeros(1)}, {"y": torch.zeros(1)})


def test_official_checkouts_from_root_and_flags(bench, tmp_path, official):
    root = tmp_path / "ref"
    for name in ("hustvl+LightningDiT", "LTH14+mar"):
        (root / name).mkdir(parents=True)
    elsewhere = tmp_path / "my-mar"
    elsewhere.mkdir()
    presets = ["va-vae-f16d32", "kl-vae-f16d16", "fa-vae-f16d64"]
    found = official.official_checkouts(presets, root, {"mar": elsewhere})
    assert found == {"va-vae-f16d32": root / "hustvl+LightningDiT", "kl-vae-f16d16": elsewhere}
    assert official.official_checkouts(presets, None, {}) == {}
    with pytest.raises(FileNotFoundError, match=r"FoundationVision/VAR.*--var"):
        official.official_checkouts(["ms-vq-vae"], root, {})


def test_missing_official_file_is_named(bench, tmp_path, official):
    (tmp_path / "LTH14+mar").mkdir()
    with pytest.raises(FileNotFoundError, match=r"models/vae\.py"):
        official._build_mar(tmp_path / "LTH14+mar")


def test_precision_must_be_known(bench):
    model = _model("kl-vae-f16d16-tiny")
    side = bench.our_side(model)
    with pytest.raises(ValueError, match="precision"):
        bench.compare_sides("p", side, side, bench.benchmark_images(1, 16, CPU), CPU, ["fp8"])


def test_command_line_without_official_code_keeps_the_anchor_table(bench, monkeypatch, capsys):
    argv = ["bench_tokenizers.py", "--device", "cpu", "--presets", "kl-vae-f16d16-tiny"]
    argv += ["--size", "32", "--batch", "2", "--iters", "1", "--warmup", "0", "--no-train"]
    monkeypatch.setattr("sys.argv", argv)
    try:
        bench.main()
    finally:
        torch.set_flush_denormal(False)  # main() sets it for CPU runs
    out = capsys.readouterr().out
    assert "official code, same run" not in out
    assert "| kl-vae-f16d16-tiny | encode fp32 |" in out
    assert "| kl-vae-f16d16-tiny | decode fp32 |" in out


def test_differing_token_indices_fail_parity(bench):
    model = _model("ms-vq-vae-tiny")
    other = copy.deepcopy(model)
    with torch.no_grad():
        for param in other.quantize.parameters():
            param.add_(0.5 * torch.randn_like(param))
    rows = bench.compare_sides(
        "ms-vq-vae-tiny",
        bench.our_side(model),
        bench.our_side(other),
        bench.benchmark_images(2, 64, CPU),
        CPU,
        precisions=["fp32"],
        iters=1,
        warmup=0,
    )
    indices = next(diff for diff in rows[0].parity if diff.name == "indices")
    assert indices.integer and indices.relative > bench.INDEX_MISMATCH_TOL
    assert not rows[0].parity_ok and rows[0].speedup is None


def test_taming_checkout_from_flag_or_root(bench, tmp_path, official):
    assert official.official_training_checkout(None, tmp_path) is None
    (tmp_path / "CompVis+taming-transformers").mkdir()
    found = official.official_training_checkout(None, tmp_path)
    assert found == tmp_path / "CompVis+taming-transformers"
    assert official.official_training_checkout(tmp_path, None) == tmp_path
    with pytest.raises(FileNotFoundError, match="--taming"):
        official.official_training_checkout(tmp_path / "absent", tmp_path)


def test_rows_without_a_parity_check_say_so_and_mark_the_ratio_ungated(benchlib):
    row = benchlib.ComparisonRow(
        "va-vae-f16d32", "train fp32", 50.0, 25.0, 9.0, 12.0, [], True, "", None, "why not"
    )
    (line,) = benchlib.comparison_table([row])[2:]
    cells = line.split(" | ")
    assert cells[4] == "2.00x (ungated)" and cells[7] == "not checked: why not"
