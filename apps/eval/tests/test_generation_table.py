"""The generation table from stub rows: the README's layout, missing cells, JSON without NaN."""

import csv
import json
import math

from freqlat.eval.generation_table import generation_markdown, write_generation_tables

PROTOCOL = {"FID": "stub protocol"}


def _row(generator, tokenizer, guidance, guided, values, epochs=64.0, missing=None):
    return {
        "generator": generator,
        "tokenizer": tokenizer,
        "epochs": epochs,
        "guidance": guidance,
        "guided": guided,
        **dict(zip(("FID", "sFID", "IS", "Precision", "Recall", "HF ratio"), values, strict=True)),
        "num_samples": 50000,
        "sampler": {"sampler": "flow-euler"},
        "labels": "uniform",
        "quantization": "lightningdit",
        "samples": f"samples/{generator}/cfg-{guidance:g}/samples.npz",
        "source": "stub",
        "missing": missing or {},
    }


def _rows():
    return [
        _row("va", "VA-VAE", 1.0, False, (5.14, 4.5, 130.2, 0.76, 0.62, 0.9)),
        _row("va", "VA-VAE", 10.0, True, (2.11, 4.6, 252.3, 0.81, 0.58, 0.95)),
        _row(
            "fa",
            "FA-VAE",
            1.0,
            False,
            (3.24, None, 193.7, 0.83, 0.69, math.nan),
            epochs=None,
            missing={"sFID": "the reference batch stores no mu_s/sigma_s"},
        ),
    ]


def test_the_markdown_pairs_each_generators_rows_as_the_readme_does():
    text = generation_markdown(_rows(), PROTOCOL)
    lines = text.splitlines()
    assert lines[0] == (
        "| Tokenizer | Epochs | FID | IS | Pre. | Rec. | FID (CFG) | IS (CFG) | Pre. (CFG) | "
        "Rec. (CFG) | sFID | sFID (CFG) | HF ratio | HF ratio (CFG) |"
    )
    assert lines[2] == (
        "| VA-VAE | 64 | 5.14 | 130.2 | 0.76 | 0.62 | 2.11 | 252.3 | 0.81 | 0.58 | 4.50 | 4.60 "
        "| 0.900 | 0.950 |"
    )
    assert lines[3] == (
        "| FA-VAE | unknown | 3.24 | 193.7 | 0.83 | 0.69 | not run | not run | not run | "
        "not run | missing | not run | missing | not run |"
    )
    assert "- sFID missing (fa at 1): the reference batch stores no mu_s/sigma_s" in lines
    assert "- HF ratio missing (fa at 1): not finite (nan)" in lines
    assert "- FID: stub protocol" in lines


def test_several_guided_settings_get_a_line_each():
    rows = [*_rows()[:2], _row("va", "VA-VAE", 4.0, True, (3.0, 4.0, 200.0, 0.8, 0.6, 0.9))]
    lines = generation_markdown(rows, PROTOCOL).splitlines()
    assert lines[2].startswith("| VA-VAE (CFG 10) | 64 | 5.14 | 130.2 | 0.76 | 0.62 | 2.11 |")
    assert lines[3].startswith("| VA-VAE (CFG 4) | 64 | 5.14 | 130.2 | 0.76 | 0.62 | 3.00 |")


def test_csv_and_json_hold_one_row_per_setting_and_no_bare_nan(tmp_path):
    paths = write_generation_tables(tmp_path, _rows(), PROTOCOL)
    assert sorted(paths) == ["csv", "json", "md"]
    with open(paths["csv"], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["generator"], r["guidance"]) for r in table] == [
        ("va", "1.0"),
        ("va", "10.0"),
        ("fa", "1.0"),
    ]
    assert table[2]["sFID"] == "missing" and table[2]["HF ratio"] == "missing"
    assert float(table[1]["FID"]) == 2.11 and table[2]["epochs"] == ""
    text = paths["json"].read_text()
    assert "NaN" not in text
    document = json.loads(text)
    fa = document["rows"][2]
    assert fa["HF ratio"] is None and fa["missing"]["HF ratio"] == "not finite (nan)"
    assert document["columns"] == ["FID", "sFID", "IS", "Precision", "Recall", "HF ratio"]
    assert document["protocol"] == PROTOCOL
    assert paths["md"].read_text() == generation_markdown(_rows(), PROTOCOL)
