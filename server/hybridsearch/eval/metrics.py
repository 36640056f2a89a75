"""Effectiveness metrics through ir-measures (trec_eval via pytrec-eval-terrier).

Every mean is over **all judged queries** (the queries in the qrels): a judged query the run
does not answer, or answers with nothing, counts 0 for every metric, like ``trec_eval -c``.
Run entries for unjudged queries are ignored. Relevance: qrels ``rel > 0`` is relevant
(``rel`` is also the nDCG gain); ``0`` is judged non-relevant.

Ties: every metric scores the order the server returns: score descending, equal scores by
document id *ascending* (`engine.ties`). ir-measures' providers do not agree on ties
(trec_eval breaks them by id descending, its MS MARCO provider, which computes RR@10, by id
ascending), so each query's scores are replaced by their served rank before evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ir_measures

#: The reported metrics, in table order: nDCG@10, Recall@100, MRR@10 and MAP.
MEASURES: tuple[Any, ...] = (
    ir_measures.nDCG @ 10,
    ir_measures.R @ 100,
    ir_measures.RR @ 10,
    ir_measures.AP,
)
METRIC_NAMES: tuple[str, ...] = tuple(str(measure) for measure in MEASURES)

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def per_query(run: Run, qrels: Qrels) -> dict[str, dict[str, float]]:
    """Metric values per judged query: qid → metric name → value (0.0 when not retrieved)."""
    values = {qid: dict.fromkeys(METRIC_NAMES, 0.0) for qid in qrels}
    judged_run = {qid: served_ranks(docs) for qid, docs in run.items() if qid in qrels and docs}
    if judged_run:
        ir_qrels = {qid: dict(docs) for qid, docs in qrels.items()}
        for metric in ir_measures.iter_calc(MEASURES, ir_qrels, judged_run):
            values[metric.query_id][str(metric.measure)] = float(metric.value)
    return values


def served_ranks(docs: Mapping[str, float]) -> dict[str, float]:
    """``docs`` (id -> score) rescored by their served position: in the server's order
    (score descending, then id ascending) the first gets ``len(docs)``, the last 1, so that
    no metric sees a tie."""
    order = sorted(docs.items(), key=lambda item: (-float(item[1]), item[0]))
    return {docid: float(len(order) - rank) for rank, (docid, _) in enumerate(order)}


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over all judged queries: metric name → value.

    Raises:
        ValueError: the qrels are empty (there is nothing to average over).
    """
    if not qrels:
        raise ValueError("qrels are empty")
    return mean_over_queries(per_query(run, qrels))


def mean_over_queries(table: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over the rows of a :func:`per_query` table."""
    if not table:
        raise ValueError("no queries to average over")
    return {name: sum(row[name] for row in table.values()) / len(table) for name in METRIC_NAMES}
