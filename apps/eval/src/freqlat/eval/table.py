"""Result tables as CSV, JSON and markdown; missing cells say ``missing`` with the reason.

The pieces here serve every ``freqlat-eval`` table: cells that are None or not finite become
``missing`` (null in JSON, never a bare NaN) with the reason in the row's ``missing``; the
reasons and the protocol are listed under the markdown table; files are written atomically.
:func:`markdown_table` and :func:`write_tables` are the reconstruction table's.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from freqlat.eval.recon import COLUMNS

MISSING = "missing"
"""What a cell shows when its metric could not be measured (the reason is listed below it)."""

DECIMALS = {"PSNR": 2}
"""Digits after the point in the reconstruction table's markdown (4 unless listed)."""


def finite_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Copies of ``rows`` in which a non-finite value of ``columns`` is None, with the reason
    (``not finite (nan)``) added to the row's ``missing``."""
    cleaned = []
    for row in rows:
        row = {**row, "missing": dict(row.get("missing", {}))}
        for column in columns:
            value = row.get(column)
            if isinstance(value, float) and not math.isfinite(value):
                row[column] = None
                row["missing"].setdefault(column, f"not finite ({value})")
        cleaned.append(row)
    return cleaned


def format_cell(value: Any, decimals: int) -> str:
    """A number with ``decimals`` digits, or ``missing`` for None."""
    return MISSING if value is None else f"{value:.{decimals}f}"


def missing_lines(rows: Sequence[dict[str, Any]], label: str) -> list[str]:
    """``- COLUMNS missing (ROWS): REASON`` for every reason, rows named by their ``label`` key;
    columns missing for the same reason in the same rows share a line."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        for column, reason in row.get("missing", {}).items():
            reasons.setdefault((column, reason), []).append(str(row[label]))
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (column, reason), names in reasons.items():
        grouped.setdefault((reason, tuple(names)), []).append(column)
    lines = []
    for (reason, names), columns in grouped.items():
        who = "all rows" if len(names) == len(rows) else ", ".join(names)
        lines.append(f"- {', '.join(columns)} {MISSING} ({who}): {reason}")
    return lines


def protocol_lines(protocol: dict[str, str]) -> list[str]:
    """``- NAME: TEXT`` for every entry of the protocol."""
    return [f"- {name}: {text}" for name, text in protocol.items()]


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path


def json_text(document: Any) -> str:
    """``document`` as indented JSON; a NaN or infinity left in it is a ValueError, never
    written (clean rows with :func:`finite_rows` first)."""
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text of ``header`` and ``rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_table_files(
    out_dir: str | Path, name: str, *, csv: str, document: Any, markdown: str
) -> dict[str, Path]:
    """Write ``<name>.csv``, ``<name>.json`` and ``<name>.md`` under ``out_dir``; return paths."""
    out = Path(out_dir)
    return {
        "csv": write_atomically(out / f"{name}.csv", csv),
        "json": write_atomically(out / f"{name}.json", json_text(document)),
        "md": write_atomically(out / f"{name}.md", markdown),
    }


def markdown_table(rows: list[dict[str, Any]], protocol: dict[str, str]) -> str:
    """The table in markdown, with the reasons for missing cells and the protocol underneath."""
    rows = finite_rows(rows, COLUMNS)
    lines = [
        "| Tokenizer | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    lines += [
        f"| {row['tokenizer']} | "
        + " | ".join(format_cell(row.get(c), DECIMALS.get(c, 4)) for c in COLUMNS)
        + " |"
        for row in rows
    ]
    reasons = missing_lines(rows, "tokenizer")
    if reasons:
        lines += ["", *reasons]
    lines += ["", *protocol_lines(protocol)]
    return "\n".join(lines) + "\n"


def write_tables(
    out_dir: str | Path, rows: list[dict[str, Any]], protocol: dict[str, str], name: str = "recon"
) -> dict[str, Path]:
    """Write ``<name>.csv``, ``<name>.json`` and ``<name>.md`` under ``out_dir``; return paths.

    CSV cells of missing metrics hold ``missing``; JSON holds null there, with the reasons in
    each row's ``missing`` and the protocol of every column.
    """
    rows = finite_rows(rows, COLUMNS)
    table = [
        [
            row["tokenizer"],
            *(MISSING if row.get(c) is None else repr(float(row[c])) for c in COLUMNS),
            row["num_images"],
            row["source"],
        ]
        for row in rows
    ]
    return write_table_files(
        out_dir,
        name,
        csv=csv_text(["tokenizer", *COLUMNS, "num_images", "source"], table),
        document={"columns": list(COLUMNS), "rows": rows, "protocol": protocol},
        markdown=markdown_table(rows, protocol),
    )
