"""The generation table: one row per (generator, guidance setting) in CSV and JSON, and the
FA-VAE README's markdown table (Tokenizer, Epochs, FID, IS, Pre., Rec., and the same with CFG),
followed by our columns (sFID and the high-frequency power ratio, each without and with CFG).

In markdown a generator's unguided row fills the left half and each of its guided rows the
right half of one line; a half with no row reads ``not run``. Missing cells say ``missing``
with the reason under the table, as in every freqlat-eval table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from freqlat.eval.table import (
    MISSING,
    csv_text,
    finite_rows,
    format_cell,
    missing_lines,
    protocol_lines,
    write_atomically,
    write_table_files,
)
from freqlat.tokenizers import unique_names

COLUMNS: tuple[str, ...] = ("FID", "sFID", "IS", "Precision", "Recall", "HF ratio")
"""The metric columns of a row (CSV and JSON)."""

SEED_COLUMNS = (("FID", "FID", 2), ("IS", "IS", 1), ("Precision", "Pre.", 2), ("Recall", "Rec.", 2))
"""(column, markdown header, decimals) of the FA-VAE README's half-table."""

EXTRA_COLUMNS = (("sFID", "sFID", 2), ("HF ratio", "HF ratio", 3))
"""(column, markdown header, decimals) of the columns we add after the README's."""

NOT_RUN = "not run"


def format_epochs(epochs: float | None) -> str:
    """``64`` for whole epochs, ``0.25`` otherwise, ``unknown`` when the run does not say."""
    if epochs is None:
        return "unknown"
    return str(int(epochs)) if float(epochs).is_integer() else f"{epochs:.2f}"


def _cells(row: dict[str, Any] | None, columns: Sequence[tuple[str, str, int]]) -> list[str]:
    if row is None:
        return [NOT_RUN] * len(columns)
    return [format_cell(row.get(column), decimals) for column, _, decimals in columns]


def _lines(rows: list[dict[str, Any]]) -> list[tuple[str, dict | None, dict | None]]:
    """(first cell, unguided row, guided row) per markdown line, generators in order."""
    generators: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        generators.setdefault(row["generator"], []).append(row)
    lines = []
    for group in generators.values():
        plain = next((r for r in group if not r["guided"]), None)
        guided = [r for r in group if r["guided"]] or [None]
        for row in guided:
            label = group[0]["tokenizer"]
            if len(guided) > 1:
                label += f" (CFG {row['guidance']:g})"
            lines.append((label, plain, row))
    labels = unique_names([label for label, _, _ in lines])
    return [(label, *line[1:]) for label, line in zip(labels, lines, strict=True)]


def generation_markdown(rows: list[dict[str, Any]], protocol: dict[str, str]) -> str:
    """The markdown table, the reasons for missing cells and the protocol underneath."""
    rows = finite_rows(rows, COLUMNS)
    head = [h for _, h, _ in SEED_COLUMNS]
    extra = [h for _, h, _ in EXTRA_COLUMNS]
    header = [
        "Tokenizer",
        "Epochs",
        *head,
        *(f"{h} (CFG)" for h in head),
        *(f"{h}{suffix}" for h in extra for suffix in ("", " (CFG)")),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, plain, guided in _lines(rows):
        epochs = format_epochs((plain or guided or {}).get("epochs"))
        extras = []
        for column in EXTRA_COLUMNS:
            extras += _cells(plain, [column]) + _cells(guided, [column])
        cells = [
            label,
            epochs,
            *_cells(plain, SEED_COLUMNS),
            *_cells(guided, SEED_COLUMNS),
            *extras,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    named = [{**row, "row": f"{row['generator']} at {row['guidance']:g}"} for row in rows]
    reasons = missing_lines(named, "row")
    if reasons:
        lines += ["", *reasons]
    lines += ["", *protocol_lines(protocol)]
    return "\n".join(lines) + "\n"


def write_generation_tables(
    out_dir: str | Path, rows: list[dict[str, Any]], protocol: dict[str, str]
) -> dict[str, Path]:
    """Write ``generation.csv``, ``.json`` and ``.md`` under ``out_dir``; return their paths.

    CSV cells of missing metrics hold ``missing``; JSON holds null there (never NaN), with the
    reasons in each row's ``missing`` and the protocol of every column.
    """
    rows = finite_rows(rows, COLUMNS)
    header = ["generator", "tokenizer", "epochs", "guidance", *COLUMNS]
    header += ["num_samples", "sampler", "labels", "quantization", "samples", "source"]
    table = [
        [
            row["generator"],
            row["tokenizer"],
            "" if row["epochs"] is None else row["epochs"],
            row["guidance"],
            *(MISSING if row.get(c) is None else repr(float(row[c])) for c in COLUMNS),
            row["num_samples"],
            row["sampler"]["sampler"],
            row["labels"],
            row["quantization"],
            row["samples"],
            row["source"],
        ]
        for row in rows
    ]
    return write_table_files(
        out_dir,
        "generation",
        csv=csv_text(header, table),
        document={"columns": list(COLUMNS), "rows": rows, "protocol": protocol},
        markdown=generation_markdown(rows, protocol),
    )


def write_spectra(
    out_dir: str | os.PathLike[str],
    curves: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, Path]:
    """``spectra.csv`` (curve, frequency, power) and ``spectra.png`` (log power against
    frequency, the high band shaded) of named (frequencies, mean spectrum) curves; returns
    their paths by file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    table = [
        [name, repr(float(f)), repr(float(p))]
        for name, (frequencies, power) in curves.items()
        for f, p in zip(frequencies.tolist(), power.tolist(), strict=True)
    ]
    header = ["curve", "frequency", "power"]
    paths = {"spectra.csv": write_atomically(out / "spectra.csv", csv_text(header, table))}
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, (frequencies, power) in curves.items():
        style = {"color": "black", "linewidth": 2.0} if name == "reference" else {}
        axis.semilogy(frequencies[1:].numpy(), power[1:].numpy(), label=name, **style)
    axis.axvspan(0.25, 0.5, color="0.9", zorder=0, label="high band (HF ratio)")
    axis.set_xlabel("frequency (cycles per pixel)")
    axis.set_ylabel("mean power per coefficient")
    axis.set_title("Radially averaged power spectra: samples vs reference images")
    axis.legend(fontsize=7)
    figure.tight_layout()
    paths["spectra.png"] = out / "spectra.png"
    temp = out / ".spectra.tmp.png"
    figure.savefig(temp, dpi=120)
    plt.close(figure)
    os.replace(temp, paths["spectra.png"])
    return paths
