"""Evaluation: benchmarks, FlipSketch variants and baselines, metrics, tables, W&B.

    from flipsketch.evaluation import run_eval
    out = run_eval(["experiment=tiny_table1", "logger=none"])
    print(out["table"]); out["results_csv"]

The command line is `flipsketch-eval` (src/flipsketch/eval.py, conf/eval.yaml).
"""

from .api import compose_eval, run_eval
from .benchmark import BenchmarkItem, load_benchmark
from .methods import Method, resolve_methods
from .table import summarize, to_markdown

__all__ = [
    "BenchmarkItem",
    "Method",
    "compose_eval",
    "load_benchmark",
    "resolve_methods",
    "run_eval",
    "summarize",
    "to_markdown",
]
