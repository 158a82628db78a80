"""freqlat-eval recon: the table's values, its three files, and missing metrics never faked."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from freqlat.core import EmbeddedPhotos
from freqlat.eval.cli import main
from freqlat.eval.recon import COLUMNS
from freqlat.metrics import LPIPS

SIZE = 32
NUM_IMAGES = 6


def _originals(count=NUM_IMAGES):
    data = EmbeddedPhotos("val", SIZE)
    return torch.stack([data[i][0] for i in range(count)])


def _recon_args(out, *tokenizers, num_images=NUM_IMAGES, extra=()):
    return [
        "recon",
        "--tokenizer",
        *map(str, tokenizers),
        "--data",
        "embedded",
        "--num-images",
        str(num_images),
        "--image-size",
        str(SIZE),
        "--batch-size",
        "4",
        "--num-workers",
        "0",
        "--out",
        str(out),
        *extra,
    ]


def _seed_protocol_recon(model, x, seed=0):
    """Decoder output of one posterior draw per image, image i seeded by SeedSequence([seed, i])."""
    with torch.no_grad():
        posterior = model.encode(x)
        noise = []
        for index in range(len(x)):
            state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
            generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            noise.append(torch.randn(posterior.mean.shape[1:], generator=generator))
        return model.decode(posterior.mean + posterior.std * torch.stack(noise))


def _rows(out):
    return json.loads((out / "recon.json").read_text())["rows"]


def test_table_has_one_row_per_tokenizer_with_values_and_missing_metrics(tmp_path, saved_tokenizer):
    kl_dir, kl_model = saved_tokenizer("kl-vae-f16d16-tiny")
    fa_dir, _ = saved_tokenizer("fa-vae-f16d32-tiny")
    out = tmp_path / "table"
    assert main(_recon_args(out, kl_dir, fa_dir, "random:kl-vae-f16d16-tiny")) == 0

    with open(out / "recon.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["tokenizer"] for r in rows] == [
        "kl-vae-f16d16-tiny",
        "fa-vae-f16d32-tiny",
        "kl-vae-f16d16-tiny (random weights)",
    ]
    assert all(r["LPIPS"] == "missing" and r["rFID"] == "missing" for r in rows)
    document = json.loads((out / "recon.json").read_text())
    assert document["columns"] == list(COLUMNS)
    for row in document["rows"]:
        assert row["LPIPS"] is None and row["rFID"] is None
        assert "vgg16-397923af.pth" in row["missing"]["LPIPS"]
        assert "weights-inception-2015-12-05-6726825d.pth" in row["missing"]["rFID"]
        assert row["num_images"] == NUM_IMAGES
        # one-level orthonormal Haar: Recon = (Low + 3 High) / 4
        assert row["Recon"] == pytest.approx((row["Low"] + 3 * row["High"]) / 4, rel=1e-9)
    assert set(document["protocol"]) >= set(COLUMNS) | {"data", "reconstruction"}
    assert "rfid-fa-vae" in document["protocol"]["rFID"]
    markdown = (out / "recon.md").read_text()
    assert "| Tokenizer | Recon | Low | High | LPIPS | rFID | PSNR | SSIM |" in markdown
    assert "| missing | missing |" in markdown and "LPIPS missing (all rows)" in markdown

    # the first row equals a direct computation on the same images (protocol "fa-vae")
    x = _originals()
    y = _seed_protocol_recon(kl_model, x)
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    first = document["rows"][0]
    assert first["Recon"] == pytest.approx(float(mse.mean()), rel=1e-5)
    clamped_mse = (x - y.clamp(-1, 1)).pow(2).mean(dim=(1, 2, 3))
    psnr = float((10 * torch.log10(4.0 / clamped_mse)).mean())
    assert first["PSNR"] == pytest.approx(psnr, rel=1e-5)
    assert float(rows[0]["Recon"]) == first["Recon"]
    # a random tokenizer with the same seed is the saved one (seed 0)
    assert document["rows"][2]["Recon"] == first["Recon"]


def test_lpips_and_rfid_are_filled_when_their_weights_files_exist(
    tmp_path, saved_tokenizer, monkeypatch
):
    from dataclasses import replace

    from torchvision.models.vgg import cfgs, make_layers

    from freqlat.metrics import InceptionFeatures, inception, perceptual
    from freqlat.metrics.weights import file_sha256

    torch.manual_seed(0)
    trunk = make_layers(cfgs["D"], batch_norm=False)
    trunk_file = tmp_path / "vgg16-random.pth"
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, trunk_file)
    inception_file = tmp_path / "inception-random.pth"
    torch.save(InceptionFeatures(pretrained=False).state_dict(), inception_file)
    # random weights stand in for the published files: accept them by their own sha256
    vgg = replace(perceptual.TRUNK_WEIGHTS["vgg"], sha256=file_sha256(trunk_file))
    monkeypatch.setitem(perceptual.TRUNK_WEIGHTS, "vgg", vgg)
    fid = replace(inception.INCEPTION_WEIGHTS, sha256=file_sha256(inception_file))
    monkeypatch.setattr(inception, "INCEPTION_WEIGHTS", fid)
    model_dir, model = saved_tokenizer("kl-vae-f16d16-tiny")
    out = tmp_path / "table"
    extra = ("--lpips-trunk", str(trunk_file), "--inception-weights", str(inception_file))
    assert main(_recon_args(out, model_dir, num_images=4, extra=extra)) == 0
    row = json.loads((out / "recon.json").read_text())["rows"][0]
    assert row["missing"] == {}
    assert math.isfinite(row["rFID"]) and row["rFID"] >= 0
    x = _originals(4)
    y = _seed_protocol_recon(model, x)
    with torch.no_grad():
        expected = LPIPS("vgg", "0.1", trunk_path=trunk_file, check_range=False)(x, y).mean()
    assert row["LPIPS"] == pytest.approx(float(expected), rel=1e-5)


def test_seed_protocol_rows_do_not_depend_on_the_batch_size_and_follow_the_seed(
    tmp_path, saved_tokenizer
):
    model_dir, _ = saved_tokenizer("fa-vae-f16d32-tiny")
    rows = {}
    for batch, seed in ((4, 0), (1, 0), (4, 1)):
        out = tmp_path / f"b{batch}-s{seed}"
        extra = ("--seed", str(seed))
        args = _recon_args(out, model_dir, extra=extra)
        args[args.index("--batch-size") + 1] = str(batch)
        assert main(args) == 0
        rows[batch, seed] = _rows(out)[0]
    for column in ("Recon", "Low", "High", "PSNR", "SSIM"):
        assert rows[1, 0][column] == pytest.approx(rows[4, 0][column], rel=1e-6, abs=1e-7)
    assert rows[4, 1]["Recon"] != pytest.approx(rows[4, 0]["Recon"], rel=1e-6)


def test_deterministic_protocol_decodes_the_mode_clamped(tmp_path, saved_tokenizer):
    model_dir, model = saved_tokenizer("kl-vae-f16d16-tiny")
    with torch.no_grad():  # push the decoder past [-1, 1] so that clamping matters
        model.decoder.conv_out.weight.mul_(40)
    model.save_pretrained(model_dir)
    x = _originals()
    with torch.no_grad():
        raw = model(x, sample=False).recon
    assert raw.abs().max() > 1.5
    out = tmp_path / "deterministic"
    assert main(_recon_args(out, model_dir, extra=("--recon-protocol", "deterministic"))) == 0
    document = json.loads((out / "recon.json").read_text())
    expected = (x - raw.clamp(-1, 1)).pow(2).mean()
    assert document["rows"][0]["Recon"] == pytest.approx(float(expected), rel=1e-5)
    assert "deterministic" in document["protocol"]["reconstruction"]
    assert "crop adm" in document["protocol"]["data"]

    out = tmp_path / "seed"
    assert main(_recon_args(out, model_dir)) == 0
    document = json.loads((out / "recon.json").read_text())
    unclamped = (x - _seed_protocol_recon(model, x)).pow(2).mean()
    assert document["rows"][0]["Recon"] == pytest.approx(float(unclamped), rel=1e-5)
    assert "HY-Wong/LightningDiT" in document["protocol"]["reconstruction"]
    assert "crop resize-center" in document["protocol"]["data"]


def test_bad_tokenizer_specs_and_data_roots_are_clear_errors(tmp_path, capsys):
    out = tmp_path / "table"
    assert main(_recon_args(out, tmp_path / "nowhere")) == 2
    assert "is not a directory, an official preset" in capsys.readouterr().err
    assert main(_recon_args(out, "kl-vae-f16d16-tiny")) == 2
    assert "has no released weights" in capsys.readouterr().err
    assert main(_recon_args(out, "va-vae-f16d32")) == 2
    assert "vavae-imagenet256-f16d32-dinov2.pt" in capsys.readouterr().err
    args = _recon_args(out, "random:kl-vae-f16d16-tiny")
    args[args.index("embedded")] = str(tmp_path / "no-imagenet")
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(_recon_args(out, "random:kl-vae-f16d16-tiny", num_images=10_000)) == 2
    assert "fewer than --num-images 10000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_recon_args(out, "random:kl-vae-f16d16-tiny", extra=("--recon-protocol", "mine")))
    assert "invalid choice: 'mine'" in capsys.readouterr().err
    assert not (out / "recon.csv").exists()


def test_debug_launcher_runs_the_job_through_submitit(tmp_path):
    out = tmp_path / "table"
    args = _recon_args(
        out, "random:kl-vae-f16d16-tiny", num_images=2, extra=("--launcher", "debug")
    )
    assert main(args) == 0
    assert (out / "recon.md").is_file()


def test_former_protocol_names_still_work_and_say_they_are_aliases(
    tmp_path, saved_tokenizer, capsys
):
    model_dir, _ = saved_tokenizer("kl-vae-f16d16-tiny")
    current = tmp_path / "current"
    assert main(_recon_args(current, model_dir, num_images=2)) == 0
    capsys.readouterr()
    former = tmp_path / "former"
    extra = ("--recon-protocol", "seed", "--rfid-protocol", "rfid-seed")
    assert main(_recon_args(former, model_dir, num_images=2, extra=extra)) == 0
    err = capsys.readouterr().err
    assert "reconstruction protocol 'seed' is an alias of 'fa-vae'" in err
    assert "protocol 'rfid-seed' is an alias of 'rfid-fa-vae'" in err
    assert _rows(former) == _rows(current)
    document = json.loads((former / "recon.json").read_text())
    assert document["protocol"]["reconstruction"].startswith("fa-vae: ")
    assert document["protocol"]["rFID"].startswith("rfid-fa-vae: ")


def test_help_lists_every_option_with_its_type_and_default(capsys):
    from freqlat.core import config_keys
    from freqlat.eval.cli import ReconCommand

    with pytest.raises(SystemExit) as exit_info:
        main(["recon", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    squashed = "".join(text.split())  # argparse wraps lines at spaces and hyphens
    for key in config_keys(ReconCommand).values():
        assert key.option in text and "".join(key.help.split()) in squashed, key.name
    assert "--num-images INT evaluate the first N images of the split (int, required)" in text
    assert "(int, default: 240)" in text and "default:fa-vae;oneoffa-vae," in squashed
