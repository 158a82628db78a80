"""Frequency-bias analysis of a set of tokenizers: which frequencies do their reconstructions lose?

For the same images, every tokenizer's reconstruction (decode of the posterior mean, or of the
quantised latent, clamped to [-1, 1] as in freqlat-eval) is compared with the original:

- per-band error table: MSE of every subband of a J-level Haar DWT (``LL``, ``LH1``, ``HL1``,
  ``HH1``, ``LH2``, ...; level 1 is the finest), from ``freqlat.wavelets.multilevel_band_mse``;
- relative per-band error: that MSE over the originals' mean energy in the band
  (``freqlat.wavelets.band_energies``), so bands with little energy are not hidden;
- per-level table: ``LL`` and the mean of the three detail bands of each level;
- radially averaged power spectra (``freqlat.wavelets.radial_power_spectrum``, mean over images
  and colour channels) of the originals and of each tokenizer's reconstructions and latents.

Outputs in ``--out``: ``band_errors.csv``, ``relative_band_errors.csv``, ``level_errors.csv``,
``spectra.csv``, ``latent_spectra.csv``, ``frequency_analysis.md`` (the three tables),
``spectra.png`` (log power vs frequency: images left, latents right, latents scaled to unit
total power so that their shapes compare) and ``spectral_ratio.png`` (reconstruction power /
original power per frequency: 1 is perfect, below 1 is lost detail, above 1 added artefacts).

The analysis itself is ``freqlat.tokenizers.analysis.analyse_tokenizers`` (which runs the
tokenizers) over ``freqlat.metrics.FrequencyAnalysis`` (which accumulates the statistics); this
script is its command line and writes the tables and plots (:func:`write_outputs`).
``--tokenizer`` takes what ``freqlat-eval`` takes.

    uv run --all-packages python tools/frequency_analysis.py --tokenizer runs/kl/export/ema runs/fa/export/ema --data /data/imagenet --image-size 256 --num-images 1000 --out analysis/
    uv run --all-packages python tools/frequency_analysis.py --tokenizer random:kl-vae-f16d16-tiny random:fa-vae-f16d32-tiny --data embedded --image-size 64 --num-images 16 --out /tmp/freq
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from freqlat.core import open_dataset
from freqlat.metrics import FrequencyAnalysis
from freqlat.tokenizers import load_tokenizer, unique_names
from freqlat.tokenizers.analysis import analyse_tokenizers

matplotlib.use("Agg")


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _table_rows(table: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[list[object]]]:
    columns = list(next(iter(table.values())))
    return ["tokenizer", *columns], [
        [name, *(row[c] for c in columns)] for name, row in table.items()
    ]


def markdown_table(table: Mapping[str, Mapping[str, float]], digits: int = 4) -> str:
    """A markdown table with one row per tokenizer and one column per key."""
    header, rows = _table_rows(table)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, *values in rows:
        lines.append(f"| {name} | " + " | ".join(f"{v:.{digits}g}" for v in values) + " |")
    return "\n".join(lines)


def plot_spectra(analysis: FrequencyAnalysis, path: str | Path) -> Path:
    """Log power vs frequency: originals and reconstructions (left), latents (right)."""
    import matplotlib.pyplot as plt

    figure, (images_axis, latents_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    frequencies = analysis.frequencies.numpy()
    images_axis.semilogy(
        frequencies, analysis.original_spectrum.numpy(), "k-", lw=2, label="original"
    )
    for name, spectrum in analysis.recon_spectra.items():
        images_axis.semilogy(frequencies, spectrum.numpy(), label=name)
    images_axis.set(
        xlabel="frequency (cycles / pixel)",
        ylabel="power",
        title=f"images ({analysis.num_images}, mean over RGB)",
    )
    for name, spectrum in analysis.latent_spectra.items():
        relative = spectrum / spectrum.sum()
        latents_axis.semilogy(
            analysis.latent_frequencies[name].numpy(), relative.numpy(), "o-", label=name
        )
    latents_axis.set(
        xlabel="frequency (cycles / latent pixel)",
        ylabel="share of total power",
        title="latents (mean over channels)",
    )
    for axis in (images_axis, latents_axis):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)


def plot_spectral_ratio(analysis: FrequencyAnalysis, path: str | Path) -> Path:
    """Reconstruction / original power per frequency, one line per tokenizer (1 = perfect)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    frequencies = analysis.frequencies.numpy()
    for name, ratio in analysis.spectral_ratios().items():
        axis.semilogy(frequencies, ratio.numpy(), label=name)
    axis.axhline(1.0, color="k", lw=1, ls="--")
    axis.set(
        xlabel="frequency (cycles / pixel)",
        ylabel="reconstruction power / original power",
        title="spectral ratio",
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)


def write_outputs(analysis: FrequencyAnalysis, out_dir: str | Path) -> dict[str, Path]:
    """Write the CSV tables, the markdown summary and the two plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "band_errors": analysis.band_errors,
        "relative_band_errors": analysis.relative_band_errors(),
        "level_errors": analysis.level_errors(),
    }
    paths = {name: _write_csv(out / f"{name}.csv", *_table_rows(t)) for name, t in tables.items()}
    names = list(analysis.recon_spectra)
    ratios = analysis.spectral_ratios()
    paths["spectra"] = _write_csv(
        out / "spectra.csv",
        ["frequency", "original", *(f"recon {n}" for n in names), *(f"ratio {n}" for n in names)],
        zip(
            analysis.frequencies.tolist(),
            analysis.original_spectrum.tolist(),
            *(analysis.recon_spectra[n].tolist() for n in names),
            *(ratios[n].tolist() for n in names),
            strict=True,
        ),
    )
    paths["latent_spectra"] = _write_csv(
        out / "latent_spectra.csv",
        ["tokenizer", "frequency", "power"],
        (
            [name, f, p]
            for name, spectrum in analysis.latent_spectra.items()
            for f, p in zip(
                analysis.latent_frequencies[name].tolist(), spectrum.tolist(), strict=True
            )
        ),
    )
    summary = [
        f"# Frequency analysis ({analysis.num_images} images, {analysis.levels}-level Haar DWT)",
        "",
        "## MSE per band (level 1 is the finest)",
        "",
        markdown_table(tables["band_errors"]),
        "",
        "## MSE per band / mean energy of the originals in the band",
        "",
        markdown_table(tables["relative_band_errors"]),
        "",
        "## MSE per level (LL, then the mean of LH, HL, HH)",
        "",
        markdown_table(tables["level_errors"]),
        "",
    ]
    paths["markdown"] = out / "frequency_analysis.md"
    paths["markdown"].write_text("\n".join(summary))
    paths["spectra_plot"] = plot_spectra(analysis, out / "spectra.png")
    paths["ratio_plot"] = plot_spectral_ratio(analysis, out / "spectral_ratio.png")
    return paths


def first_images(
    dataset: Dataset, num_images: int, batch_size: int, num_workers: int = 0
) -> Iterable[torch.Tensor]:
    """The first ``num_images`` images of ``dataset`` in order, in batches."""
    subset = Subset(dataset, range(min(num_images, len(dataset))))
    loader = DataLoader(subset, batch_size=batch_size, num_workers=num_workers)
    return (images for images, _ in loader)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", nargs="+", required=True, help="as for freqlat-eval")
    parser.add_argument(
        "--data", default="embedded", help="'embedded', an ImageNet root or a folder"
    )
    parser.add_argument("--split", default="val")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--levels", type=int, default=3, help="DWT levels of the band tables")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        loaded = [load_tokenizer(spec) for spec in args.tokenizer]
        models = dict(
            zip(unique_names([t.name for t in loaded]), (t.model for t in loaded), strict=True)
        )
        dataset = open_dataset(args.data, args.split, args.image_size)
        batches = first_images(dataset, args.num_images, args.batch_size, args.num_workers)
        analysis = analyse_tokenizers(models, batches, args.levels, args.device)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_outputs(analysis, args.out)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
