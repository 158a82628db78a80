"""freqlat.eval: the freqlat-eval app (reconstruction tables for tokenizers)."""

from freqlat.eval.cli import main
from freqlat.eval.job import ReconEvalJob, ReconEvalSettings, run_recon_eval
from freqlat.eval.recon import (
    COLUMNS,
    RECON_PROTOCOL_ALIASES,
    RECON_PROTOCOLS,
    MetricNetworks,
    ReconProtocol,
    evaluate_tokenizer,
    get_recon_protocol,
    image_generators,
    load_metric_networks,
    reconstruct,
)
from freqlat.eval.table import markdown_table, write_tables

__all__ = [
    "COLUMNS",
    "RECON_PROTOCOLS",
    "RECON_PROTOCOL_ALIASES",
    "MetricNetworks",
    "ReconEvalJob",
    "ReconEvalSettings",
    "ReconProtocol",
    "evaluate_tokenizer",
    "get_recon_protocol",
    "image_generators",
    "load_metric_networks",
    "main",
    "markdown_table",
    "reconstruct",
    "run_recon_eval",
    "write_tables",
]
