"""tools/frequency_analysis.py: band tables and spectra against closed forms, files and plots."""

import csv
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from freqlat.tokenizers import create_tokenizer
from freqlat.wavelets import band_energies, multilevel_band_mse, radial_power_spectrum


class FixedMap(nn.Module):
    """A stand-in tokenizer: recon = fn(x), latent = 4x4 average pooling of x."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, sample=True):
        return SimpleNamespace(recon=self.fn(x), latent=F.avg_pool2d(x, 4))


@pytest.fixture
def tool(load_tool):
    return load_tool("frequency_analysis")


def _images(count: int = 5, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    smooth = F.interpolate(
        torch.rand(count, 3, size // 4, size // 4, generator=generator), size=size
    )
    return (smooth + 0.2 * torch.rand(count, 3, size, size, generator=generator)).clamp(
        0, 1
    ) * 2 - 1


def test_identity_has_zero_band_errors_and_unit_spectral_ratio(tool):
    analysis = tool.analyse_tokenizers({"identity": FixedMap(lambda x: x)}, [_images()], levels=2)
    assert analysis.bands == ["LL", "LH1", "HL1", "HH1", "LH2", "HL2", "HH2"]
    assert all(value == 0 for value in analysis.band_errors["identity"].values())
    torch.testing.assert_close(
        analysis.spectral_ratios()["identity"], torch.ones_like(analysis.frequencies)
    )


def test_halving_the_image_costs_a_quarter_of_every_band_and_of_every_frequency(tool):
    analysis = tool.analyse_tokenizers({"half": FixedMap(lambda x: 0.5 * x)}, [_images()], levels=3)
    for value in analysis.relative_band_errors()["half"].values():
        assert value == pytest.approx(0.25, rel=1e-6)
    ratio = analysis.spectral_ratios()["half"]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.25))


def test_batched_accumulation_equals_the_whole_set_at_once(tool):
    images = _images(5)
    analysis = tool.analyse_tokenizers(
        {"flip": FixedMap(lambda x: x.flip(-1))}, images.split([3, 2]), levels=2
    )
    assert analysis.num_images == 5
    expected = multilevel_band_mse(images, images.flip(-1), levels=2)
    for band, value in expected.items():
        assert analysis.band_errors["flip"][band] == pytest.approx(value.item(), rel=1e-5)
    energies = band_energies(images, levels=2)
    for band, value in energies.items():
        assert analysis.original_band_energy[band] == pytest.approx(value.mean().item(), rel=1e-5)
    torch.testing.assert_close(
        analysis.original_spectrum, radial_power_spectrum(images).mean(dim=(0, 1))
    )
    latent = F.avg_pool2d(images, 4)
    assert analysis.latent_frequencies["flip"].shape == (32 // 4 // 2 + 1,)
    torch.testing.assert_close(
        analysis.latent_spectra["flip"], radial_power_spectrum(latent).mean(dim=(0, 1))
    )
    level = analysis.level_errors()["flip"]
    mean_level_1 = sum(expected[b].item() for b in ("LH1", "HL1", "HH1")) / 3
    assert level["level 1"] == pytest.approx(mean_level_1, rel=1e-5)
    assert list(level) == ["LL", "level 1", "level 2"]


def test_outputs_are_written_for_real_tokenizers(tool, tmp_path):
    torch.manual_seed(0)
    models = {
        "kl tiny": create_tokenizer("kl-vae-f16d16-tiny"),
        "fa tiny": create_tokenizer("fa-vae-f16d32-tiny"),
    }
    analysis = tool.analyse_tokenizers(models, [_images(2)], levels=2)
    paths = tool.write_outputs(analysis, tmp_path / "out")
    with open(paths["band_errors"]) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["tokenizer", "LL", "LH1", "HL1", "HH1", "LH2", "HL2", "HH2"]
    assert [row[0] for row in rows[1:]] == ["kl tiny", "fa tiny"]
    with open(paths["spectra"]) as handle:
        header = next(csv.reader(handle))
    assert header == [
        "frequency",
        "original",
        "recon kl tiny",
        "recon fa tiny",
        "ratio kl tiny",
        "ratio fa tiny",
    ]
    markdown = paths["markdown"].read_text()
    assert "| kl tiny |" in markdown and "## MSE per level" in markdown
    for plot in ("spectra_plot", "ratio_plot"):
        with Image.open(paths[plot]) as image:
            assert image.format == "PNG" and image.width > 300


def test_command_line_runs_on_an_image_folder(tool, tmp_path, write_jpegs, capsys):
    write_jpegs(tmp_path / "photos", 2, size=36)
    out = tmp_path / "analysis"
    argv = [
        "--tokenizer",
        "random:kl-vae-f16d16-tiny",
        "random:kl-vae-f16d16-tiny",
        "--data",
        str(tmp_path / "photos"),
        "--image-size",
        "32",
        "--levels",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert tool.main(argv) == 0
    assert "kl-vae-f16d16-tiny (random weights) #2" in capsys.readouterr().out
    assert (out / "spectral_ratio.png").is_file() and (out / "level_errors.csv").is_file()
    assert tool.main([*argv[:-1], str(tmp_path / "x"), "--levels", "9"]) == 2
    assert "level" in capsys.readouterr().err


def test_bands_without_energy_get_no_relative_error(tool):
    flat = torch.full((2, 3, 16, 16), 0.5)  # no detail energy at all
    analysis = tool.analyse_tokenizers({"shift": FixedMap(lambda x: x + 0.25)}, [flat], levels=1)
    relative = analysis.relative_band_errors()["shift"]
    assert relative["LL"] == pytest.approx(0.25)  # (2 * 0.25)^2 / (2 * 0.5)^2
    assert all(relative[band] != relative[band] for band in ("LH1", "HL1", "HH1"))  # NaN
