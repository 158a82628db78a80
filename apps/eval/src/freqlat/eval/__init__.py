"""freqlat.eval: the freqlat-eval app (reconstruction tables for tokenizers)."""

from freqlat.eval.cli import main
from freqlat.eval.job import ReconEvalJob, ReconEvalSettings, run_recon_eval
from freqlat.eval.recon import (
    COLUMNS,
    RECON_PROTOCOLS,
    MetricNetworks,
    ReconProtocol,
    evaluate_tokenizer,
    get_recon_protocol,
    load_metric_networks,
    reconstruct,
)
from freqlat.eval.sources import LoadedTokenizer, load_tokenizer, unique_names
from freqlat.eval.table import markdown_table, write_tables

__all__ = [
    "COLUMNS",
    "RECON_PROTOCOLS",
    "LoadedTokenizer",
    "MetricNetworks",
    "ReconEvalJob",
    "ReconEvalSettings",
    "ReconProtocol",
    "evaluate_tokenizer",
    "get_recon_protocol",
    "load_metric_networks",
    "load_tokenizer",
    "main",
    "markdown_table",
    "reconstruct",
    "run_recon_eval",
    "unique_names",
    "write_tables",
]
