"""freqlat.eval: the freqlat-eval app (the reconstruction table of tokenizers, the generation
table of generators)."""

from freqlat.eval.cli import main
from freqlat.eval.generate_job import GenerateEvalJob, GenerateEvalSettings, run_generate_eval
from freqlat.eval.generation_table import generation_markdown, write_generation_tables
from freqlat.eval.generator_specs import (
    GeneratorOptions,
    GeneratorSpec,
    LoadedGenerator,
    load_generator,
    resolve_generator,
)
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
from freqlat.eval.reference_batch import ReferenceBatch, prepare_reference
from freqlat.eval.sample_store import SampleStore
from freqlat.eval.table import markdown_table, write_tables

__all__ = [
    "COLUMNS",
    "RECON_PROTOCOLS",
    "RECON_PROTOCOL_ALIASES",
    "GenerateEvalJob",
    "GenerateEvalSettings",
    "GeneratorOptions",
    "GeneratorSpec",
    "LoadedGenerator",
    "MetricNetworks",
    "ReconEvalJob",
    "ReconEvalSettings",
    "ReconProtocol",
    "ReferenceBatch",
    "SampleStore",
    "evaluate_tokenizer",
    "generation_markdown",
    "get_recon_protocol",
    "image_generators",
    "load_generator",
    "load_metric_networks",
    "main",
    "markdown_table",
    "prepare_reference",
    "reconstruct",
    "resolve_generator",
    "run_generate_eval",
    "run_recon_eval",
    "write_generation_tables",
    "write_tables",
]
