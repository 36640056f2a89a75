"""Run a retriever over a collection's judged queries and score it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tqdm import tqdm

from hybridsearch.eval.collection import Collection
from hybridsearch.eval.metrics import METRIC_NAMES, mean_over_queries, per_query
from hybridsearch.progress import bar_options


class Retriever(Protocol):
    """Anything that ranks documents for a batch of queries (an engine, a peer tool, a fake)."""

    def retrieve(self, queries: Mapping[str, str], *, top_k: int) -> dict[str, dict[str, float]]:
        """Return qid → {docid: score} with at most ``top_k`` documents per query."""
        ...


@dataclass(frozen=True, slots=True)
class EvalReport:
    """One evaluated run: its name, mean metrics, per-query metrics and the run itself."""

    name: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: dict[str, dict[str, float]]
    num_queries: int
    elapsed_s: float


def run_evaluation(
    retriever: Retriever,
    collection: Collection,
    top_k: int = 1000,
    progress: bool = True,
    *,
    name: str = "run",
    chunk_size: int = 64,
) -> EvalReport:
    """Retrieve every judged query (in chunks of ``chunk_size``, with a tqdm bar on stderr
    when ``progress``) and score it like :func:`~hybridsearch.eval.metrics.evaluate`
    (every judged query counts; unanswered ones score 0).

    Raises:
        ValueError: ``top_k`` or ``chunk_size`` < 1, or the retriever answers a query id it
            was not asked.
    """
    if top_k < 1 or chunk_size < 1:
        raise ValueError("top_k and chunk_size must be >= 1")
    queries = list(collection.judged_queries.items())
    run: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    with tqdm(total=len(queries), desc=name, unit="q", **bar_options(not progress)) as bar:
        for begin in range(0, len(queries), chunk_size):
            chunk = dict(queries[begin : begin + chunk_size])
            answered = retriever.retrieve(chunk, top_k=top_k)
            unasked = answered.keys() - chunk.keys()
            if unasked:
                raise ValueError(f"retriever answered unasked queries: {sorted(unasked)[:5]}")
            run.update(answered)
            bar.update(len(chunk))
    elapsed_s = time.perf_counter() - started
    table = per_query(run, collection.qrels)
    return EvalReport(
        name=name,
        metrics=mean_over_queries(table),
        per_query=table,
        run=run,
        num_queries=len(queries),
        elapsed_s=elapsed_s,
    )


def format_table(reports: Sequence[EvalReport]) -> str:
    """A fixed-width table: one line per report, a column per metric (3 decimals) and the
    number of queries."""
    name_width = max([len("run"), *(len(r.name) for r in reports)])
    widths = [max(len(m), 6) for m in METRIC_NAMES]
    header = " ".join(
        [
            f"{'run':<{name_width}}",
            *(f"{m:>{w}}" for m, w in zip(METRIC_NAMES, widths, strict=True)),
            f"{'queries':>7}",
        ]
    )
    lines = [header, "-" * len(header)]
    for report in reports:
        cells = (f"{report.metrics[m]:>{w}.3f}" for m, w in zip(METRIC_NAMES, widths, strict=True))
        lines.append(" ".join([f"{report.name:<{name_width}}", *cells, f"{report.num_queries:>7}"]))
    return "\n".join(lines)
