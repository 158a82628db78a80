"""tools/frequency_analysis.py: the tables, plots and command line over
freqlat.tokenizers.analysis (the analysis's own tests are in packages/tokenizers)."""

import csv

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.analysis import analyse_tokenizers


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


def test_outputs_are_written_for_real_tokenizers(tool, tmp_path):
    torch.manual_seed(0)
    models = {
        "kl tiny": create_tokenizer("kl-vae-f16d16-tiny"),
        "fa tiny": create_tokenizer("fa-vae-f16d32-tiny"),
    }
    analysis = analyse_tokenizers(models, [_images(2)], levels=2)
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
