"""Effectiveness evaluation: runs, metrics, alpha sweeps."""

from hybridsearch.eval.collection import Collection, load_beir
from hybridsearch.eval.metrics import METRIC_NAMES, evaluate, mean_over_queries, per_query
from hybridsearch.eval.runner import EvalReport, Retriever, format_table, run_evaluation
from hybridsearch.eval.sweep import SweepRow, parse_sweep, plot_alpha_sweep, write_sweep_csv
from hybridsearch.eval.trec import read_trec_run, write_trec_run

__all__ = [
    "METRIC_NAMES",
    "Collection",
    "EvalReport",
    "Retriever",
    "SweepRow",
    "evaluate",
    "format_table",
    "load_beir",
    "mean_over_queries",
    "parse_sweep",
    "per_query",
    "plot_alpha_sweep",
    "read_trec_run",
    "run_evaluation",
    "write_sweep_csv",
    "write_trec_run",
]
