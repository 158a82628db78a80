"""Write the reconstruction table as CSV, JSON and markdown; missing cells say ``missing``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from freqlat.eval.recon import COLUMNS

MISSING = "missing"
"""What a cell shows when its metric could not be measured (the reason is listed below it)."""

DECIMALS = {"PSNR": 2}
"""Digits after the point in the markdown table (4 unless listed)."""


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        return MISSING
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{DECIMALS.get(column, 4)}f}"


def markdown_table(rows: list[dict[str, Any]], protocol: dict[str, str]) -> str:
    """The table in markdown, with the reasons for missing cells and the protocol underneath."""
    lines = [
        "| Tokenizer | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    lines += [
        f"| {row['tokenizer']} | " + " | ".join(_cell(row, c) for c in COLUMNS) + " |"
        for row in rows
    ]
    reasons = {}
    for row in rows:
        for column, reason in row.get("missing", {}).items():
            reasons.setdefault((column, reason), []).append(row["tokenizer"])
    if reasons:
        lines.append("")
        for (column, reason), names in reasons.items():
            who = "all rows" if len(names) == len(rows) else ", ".join(names)
            lines.append(f"- {column} {MISSING} ({who}): {reason}")
    lines.append("")
    lines += [f"- {name}: {text}" for name, text in protocol.items()]
    return "\n".join(lines) + "\n"


def write_tables(
    out_dir: str | Path, rows: list[dict[str, Any]], protocol: dict[str, str], name: str = "recon"
) -> dict[str, Path]:
    """Write ``<name>.csv``, ``<name>.json`` and ``<name>.md`` under ``out_dir``; return paths.

    CSV cells of missing metrics hold ``missing``; JSON holds null there, with the reasons in
    each row's ``missing`` and the protocol of every column.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"{name}.{kind}" for kind in ("csv", "json", "md")}
    with open(paths["csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tokenizer", *COLUMNS, "num_images", "source"])
        for row in rows:
            cells = [MISSING if row.get(c) is None else repr(float(row[c])) for c in COLUMNS]
            writer.writerow([row["tokenizer"], *cells, row["num_images"], row["source"]])
    document = {"columns": list(COLUMNS), "rows": rows, "protocol": protocol}
    paths["json"].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown_table(rows, protocol), encoding="utf-8")
    return paths
