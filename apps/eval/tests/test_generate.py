"""freqlat-eval generate: samples independent of batching, resume, tokenizer checks, errors."""

import json

import numpy as np
import pytest
import torch

import freqlat.eval.generate as generate_module
from freqlat.core import DistributedContext
from freqlat.eval import main
from freqlat.eval.generate import measure_samples
from freqlat.eval.reference_batch import prepare_reference
from freqlat.eval.sample_store import SampleStore
from freqlat.metrics import write_adm_npz

GUIDED = {"flow": "4", "ldm": "3", "var": "1.5"}
PRESETS = {"flow": "lightningdit-tiny", "ldm": "ldm-tiny", "var": "var-tiny"}


def _args(out, *generators, num_samples=7, batch_size=3, extra=()):
    return [
        "generate",
        "--generator",
        *map(str, generators),
        "--num-samples",
        str(num_samples),
        "--batch-size",
        str(batch_size),
        "--shard-size",
        "4",
        "--steps",
        "3",
        "--ddim-steps",
        "4",
        "--out",
        str(out),
        *extra,
    ]


def _samples(out, name, guidance):
    with np.load(out / "samples" / name / f"cfg-{guidance}" / "samples.npz") as data:
        return data["arr_0"], data["arr_1"]


def _assert_same_images(a, b):
    """Equal up to float32 rounding of other batch compositions: a pixel may move by one level."""
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("family", ["flow", "ldm", "var"])
def test_samples_do_not_depend_on_the_batch_size(tmp_path, generator_run, reference_batch, family):
    tiny = generator_run(family)
    run, size = tiny.run, tiny.image_size
    ref = reference_batch(tmp_path / "ref.npz", size)
    cfg = ("--cfg-scale", GUIDED[family], "--reference", str(ref))
    cache = ("--stats-cache", str(tmp_path / "cache"))
    assert main(_args(tmp_path / "a", run, batch_size=3, extra=(*cfg, *cache))) == 0
    assert main(_args(tmp_path / "b", run, batch_size=4, extra=(*cfg, *cache))) == 0
    row = json.loads((tmp_path / "a" / "generation.json").read_text())["rows"][0]
    folder = f"{PRESETS[family]}-EMA"
    images_a, labels_a = _samples(tmp_path / "a", folder, GUIDED[family])
    images_b, labels_b = _samples(tmp_path / "b", folder, GUIDED[family])
    _assert_same_images(images_a, images_b)
    np.testing.assert_array_equal(labels_a, labels_b)
    assert images_a.shape == (7, size, size, 3)
    assert images_a.std() > 5  # real images, not a constant
    if family == "var":  # upstream VAR: 50 per class, here i mod 10
        np.testing.assert_array_equal(labels_a, np.arange(7) % tiny.model.config.num_classes)
        assert row["labels"] == "balanced" and row["quantization"] == "adm"
    else:
        assert row["labels"] == "uniform" and len(set(labels_a.tolist())) > 1
    assert row["guided"] and row["epochs"] == 3 and row["tokenizer"].endswith("-tiny")
    # no Inception weights here: those columns say so, the spectral column is measured
    for column in ("FID", "sFID", "IS", "Precision", "Recall"):
        assert row[column] is None
        assert "weights-inception-2015-12-05-6726825d.pth" in row["missing"][column]
    assert row["HF ratio"] > 0 and "HF ratio" not in row["missing"]


def test_guidance_changes_the_samples_of_every_family(tmp_path, generator_run):
    runs = [generator_run(family).run for family in ("flow", "ldm", "var")]
    # flow and LDM are unguided at 1, VAR at 0: the other value guides each of them
    assert main(_args(tmp_path / "out", *runs, num_samples=3, extra=("--cfg-scale", "0", "1"))) == 0
    rows = json.loads((tmp_path / "out" / "generation.json").read_text())["rows"]
    assert [(r["generator"], r["guidance"], r["guided"]) for r in rows] == [
        ("lightningdit-tiny (EMA)", 0.0, True),
        ("lightningdit-tiny (EMA)", 1.0, False),
        ("ldm-tiny (EMA)", 0.0, True),
        ("ldm-tiny (EMA)", 1.0, False),
        ("var-tiny (EMA)", 0.0, False),
        ("var-tiny (EMA)", 1.0, True),
    ]
    for name in ("lightningdit-tiny-EMA", "ldm-tiny-EMA", "var-tiny-EMA"):
        unguided, labels = _samples(tmp_path / "out", name, 0)
        guided, same_labels = _samples(tmp_path / "out", name, 1)
        np.testing.assert_array_equal(labels, same_labels)
        assert np.abs(unguided.astype(int) - guided.astype(int)).max() > 1, name
    assert "missing (all rows)" in (tmp_path / "out" / "generation.md").read_text()


class _Interrupt(Exception):
    pass


def test_a_resumed_evaluation_samples_only_what_is_missing(tmp_path, generator_run, monkeypatch):
    run = generator_run("flow").run
    args = _args(tmp_path / "out", run, num_samples=10, batch_size=2, extra=("--cfg-scale", "4"))
    real = generate_module.generate_images
    sampled = []

    def interrupted(loaded, indices, *rest):
        if len(sampled) >= 6:  # dies inside the second shard (samples 4 ... 7)
            raise _Interrupt
        sampled.extend(indices)
        return real(loaded, indices, *rest)

    monkeypatch.setattr(generate_module, "generate_images", interrupted)
    with pytest.raises(_Interrupt):
        main(args)
    folder = tmp_path / "out" / "samples" / "lightningdit-tiny-EMA" / "cfg-4"
    assert sorted(p.name for p in (folder / "shards").glob("*.npz")) == ["shard-000000.npz"]
    sampled.clear()

    def counted(loaded, indices, *rest):
        sampled.extend(indices)
        return real(loaded, indices, *rest)

    monkeypatch.setattr(generate_module, "generate_images", counted)
    assert main(args) == 0
    assert sampled == list(range(4, 10))  # shard 0 was not redone
    assert main(args) == 0  # complete: nothing is sampled again
    assert sampled == list(range(4, 10))
    monkeypatch.setattr(generate_module, "generate_images", real)
    fresh = tmp_path / "fresh"
    assert main(_args(fresh, run, num_samples=10, batch_size=2, extra=("--cfg-scale", "4"))) == 0
    resumed_images, resumed_labels = _samples(tmp_path / "out", "lightningdit-tiny-EMA", 4)
    fresh_images, fresh_labels = _samples(fresh, "lightningdit-tiny-EMA", 4)
    assert len(resumed_images) == 10
    np.testing.assert_array_equal(resumed_images, fresh_images)
    np.testing.assert_array_equal(resumed_labels, fresh_labels)
    row = json.loads((tmp_path / "out" / "generation.json").read_text())["rows"][0]
    assert row["num_samples"] == 10


def test_settings_that_change_the_images_do_not_reuse_old_samples(tmp_path, generator_run, capsys):
    run = generator_run("flow").run
    debug = ("--cfg-scale", "4", "--launcher", "debug")  # through submitit's DebugExecutor
    assert main(_args(tmp_path / "out", run, num_samples=2, extra=debug)) == 0
    assert (tmp_path / "out" / "generation.md").is_file()
    capsys.readouterr()
    changed = _args(tmp_path / "out", run, num_samples=2, extra=("--cfg-scale", "4", "--seed", "1"))
    assert main(changed) == 2
    assert "holds samples made with other settings (keys ['seed'])" in capsys.readouterr().err


def test_an_explicit_tokenizer_must_be_the_runs_unless_forced(tmp_path, generator_run, capsys):
    tiny = generator_run("flow")
    run, tokenizer_dir = tiny.run, tiny.tokenizer_dir
    base = _args(tmp_path / "out", run, num_samples=2, extra=("--cfg-scale", "1"))
    assert main([*base, "--tokenizer", str(tokenizer_dir.resolve())]) == 0  # the same one
    capsys.readouterr()
    assert main([*base, "--tokenizer", "random:va-vae-f16d32-tiny"]) == 2
    err = capsys.readouterr().err
    assert "was trained on the latents of tokenizer" in err and "--force-tokenizer" in err
    forced = _args(tmp_path / "forced", run, num_samples=2, extra=("--cfg-scale", "1"))
    forced += ["--tokenizer", "random:va-vae-f16d32-tiny", "--force-tokenizer", "true"]
    assert main(forced) == 0
    row = json.loads((tmp_path / "forced" / "generation.json").read_text())["rows"][0]
    assert row["tokenizer_spec"] == "random:va-vae-f16d32-tiny"
    assert row["tokenizer"] == "va-vae-f16d32-tiny (random weights)"
    assert "(forced)" in row["notes"][0] and str(tokenizer_dir) in row["notes"][0]


def test_bad_inputs_are_one_line_errors_before_any_sample(tmp_path, generator_run, capsys):
    run = generator_run("flow").run
    out = tmp_path / "out"
    cases = [
        (("--reference", str(tmp_path / "nowhere.npz")), "--reference"),
        (("--epochs", "1", "2"), "one --epochs value per --generator"),
        (("--latent-stats", str(tmp_path / "stats.pt")), "does not exist"),
        (("--cfg-scale", "4", "4"), "lists a value twice"),
    ]
    for extra, message in cases:
        assert main(_args(out, run, extra=("--cfg-scale", "1", *extra))) == 2
        assert message in capsys.readouterr().err
    np.save(tmp_path / "array.npy", np.zeros(3))
    assert (
        main(
            _args(out, run, extra=("--cfg-scale", "1", "--reference", str(tmp_path / "array.npy")))
        )
        == 2
    )
    assert "not an .npz archive" in capsys.readouterr().err
    np.savez(tmp_path / "empty.npz", labels=np.zeros(3))
    assert (
        main(
            _args(out, run, extra=("--cfg-scale", "1", "--reference", str(tmp_path / "empty.npz")))
        )
        == 2
    )
    assert "holds neither 'arr_0' images nor 'mu'/'sigma'" in capsys.readouterr().err
    checkpoint = tmp_path / "checkpoint.pt"  # never read: the checks before it fail
    checkpoint.write_bytes(b"")
    official = _args(out, f"lightningdit-tiny={checkpoint}", extra=("--cfg-scale", "1"))
    assert main(official) == 2
    assert "give --latent-stats" in capsys.readouterr().err
    stats = tmp_path / "latents_stats.pt"
    torch.save({"mean": torch.zeros(1, 32, 1, 1), "std": torch.ones(1, 32, 1, 1)}, stats)
    official += ["--latent-stats", str(stats)]
    assert main(official) == 2
    assert "give --tokenizer" in capsys.readouterr().err
    missing = _args(out, "lightningdit-tiny=missing.pt", extra=("--cfg-scale", "1"))
    assert main([*missing, "--tokenizer", "random:va-vae-f16d32-tiny"]) == 2
    assert "checkpoint missing.pt does not exist" in capsys.readouterr().err
    assert main(_args(out, tmp_path / "no-run", extra=("--cfg-scale", "1"))) == 2
    assert "is not a directory, a run directory or PRESET=CHECKPOINT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_args(out, run, extra=("--cfg-scale", "high")))
    assert "expects float list" in capsys.readouterr().err
    assert not out.exists()


def test_the_spectral_column_of_images_with_a_known_spectrum(tmp_path):
    # samples: stripes of period 2 (Nyquist) with amplitude 50 plus period-4 stripes (a quarter
    # cycle per pixel: low band) of amplitude 60; reference: period-2 stripes of amplitude 100.
    # Their high-band power ratio is (50 / 100)^2 = 0.25 exactly.
    size = 16
    w = np.arange(size)
    nyquist = np.broadcast_to((1 - 2 * (w % 2))[None, :, None], (size, size, 3))
    quarter = np.broadcast_to(np.tile([1, 0, -1, 0], size // 4)[None, :, None], (size, size, 3))
    samples = np.stack([128 + 50 * nyquist + 60 * quarter] * 5).astype(np.uint8)
    store = SampleStore(tmp_path / "cell", {"num_samples": 5, "shard_size": 5})
    store.open()
    store.write_shard(0, samples, np.zeros(5, dtype=np.int64))
    store.assemble()
    write_adm_npz(tmp_path / "ref.npz", np.stack([128 + 100 * nyquist] * 3).astype(np.uint8))
    reference = prepare_reference(tmp_path / "ref.npz", None, cache_dir=tmp_path / "cache")
    ctx = DistributedContext(0, 1, 0, torch.device("cpu"), None)
    values, missing, _ = measure_samples(store, None, reference, batch_size=2, ctx=ctx)
    assert values["HF ratio"] == pytest.approx(0.25, rel=1e-12)
    assert "HF ratio" not in missing
    # a stats-only reference batch (no images) cannot give the ratio, and says why
    np.savez(tmp_path / "stats.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    stats_only = prepare_reference(tmp_path / "stats.npz", None, cache_dir=tmp_path / "cache")
    values, missing, _ = measure_samples(store, None, stats_only, batch_size=2, ctx=ctx)
    assert values["HF ratio"] is None and "holds no images" in missing["HF ratio"]


def test_help_lists_every_option_with_its_type_and_default(capsys):
    from freqlat.core import config_keys
    from freqlat.eval.cli import GenerateCommand

    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    squashed = "".join(text.split())
    for key in config_keys(GenerateCommand).values():
        assert key.option in text and "".join(key.help.split()) in squashed, key.name
    assert "--cfg-scale SCALE [SCALE ...]" in text and "(float list, required)" in text
    assert "(int, default: 1440)" in text
