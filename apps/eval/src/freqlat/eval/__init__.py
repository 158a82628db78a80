"""freqlat.eval: the freqlat-eval app (reconstruction tables for tokenizers)."""

from freqlat.eval.cli import main
from freqlat.eval.job import ReconEvalJob, ReconEvalSettings, run_recon_eval
from freqlat.eval.recon import COLUMNS, MetricNetworks, evaluate_tokenizer, load_metric_networks
from freqlat.eval.sources import LoadedTokenizer, load_tokenizer
from freqlat.eval.table import markdown_table, write_tables

__all__ = [
    "COLUMNS",
    "LoadedTokenizer",
    "MetricNetworks",
    "ReconEvalJob",
    "ReconEvalSettings",
    "evaluate_tokenizer",
    "load_metric_networks",
    "load_tokenizer",
    "main",
    "markdown_table",
    "run_recon_eval",
    "write_tables",
]
