"""The Lucene arm on the shared collections, next to tantivy's, from cached arm runs.

For each collection a BM25-only Lucene index (``--sparse-backend lucene``: title + text as
one field, Anserini's analyser, k1 0.9, b 0.4) is built once into the eval index cache, and its
run (1000 deep) for every judged query is fused offline with the dense run of the collection's
cached `arm_runs` (the same MiniLM lists the tantivy rows fuse), by the server's fusion
functions: min-max and z-score interpolation at alpha 0.5, RRF k 60. The tantivy rows are
computed the same way from the same cache, so both sides differ only by the BM25 arm.

Documents Anserini does not index (no text) keep their dense hits: they get ordinals after
the Lucene index's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hybridsearch.eval.arm_runs import ArmRuns, QueryRun
from hybridsearch.eval.collection import Collection
from hybridsearch.eval.fusion_training import Fuser, fixed, fused_run, rrf
from hybridsearch.eval.metrics import evaluate
from hybridsearch.sparse.lucene_index import DEFAULT_B, DEFAULT_K1, Bm25Params
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.storage.lucene_build import build_lucene_index
from hybridsearch.types import Normalization, RankedList

HYBRIDS: dict[str, Fuser] = {
    "hybrid min-max": fixed(0.5, Normalization.MIN_MAX),
    "hybrid z-score": fixed(0.5, Normalization.Z_SCORE),
    "hybrid RRF": rrf(60),
}
METHODS = ("BM25", *HYBRIDS)


def lucene_bm25_index(collection: Collection, cache: Path, name: str) -> OpenIndex:
    """The collection's BM25-only Lucene index, built on first use."""
    path = cache / name / f"lucene-bm25-k{DEFAULT_K1}-b{DEFAULT_B}"
    if not (path / "manifest.json").is_file():
        docs = read_corpus(collection.corpus_path)
        bm25 = Bm25Params(DEFAULT_K1, DEFAULT_B)
        build_lucene_index(docs, path, encoder=None, encoder_info=None, bm25=bm25, force=True)
    return open_index(path)


def lucene_runs(index: OpenIndex, tantivy: ArmRuns, depth: int = 1000) -> ArmRuns:
    """``tantivy``'s runs with the Lucene index's BM25 lists in place of tantivy's."""
    ids = list(index.ids)
    ordinal = {doc_id: i for i, doc_id in enumerate(ids)}
    for doc_id in tantivy.ids:  # documents without text: dense-only, after Lucene's
        if doc_id not in ordinal:
            ordinal[doc_id] = len(ids)
            ids.append(doc_id)
    remap = np.array([ordinal[d] for d in tantivy.ids], dtype=np.int64)
    queries = {}
    for qid, run in tantivy.queries.items():
        sparse = index.search_sparse_text(run.text, depth)
        sparse = RankedList(sparse.ordinals, sparse.scores.astype(np.float64))
        dense = RankedList(remap[run.dense.ordinals], run.dense.scores)
        queries[qid] = QueryRun(run.text, run.stats, sparse, dense)
    return ArmRuns(tantivy.name, ids, queries, tantivy.qrels)


def bm25_run(runs: ArmRuns) -> dict[str, dict[str, float]]:
    """The BM25 arm's lists as a run (docid → score)."""
    doc_id: Callable[[int], str] = runs.ids.__getitem__
    return {
        qid: {
            doc_id(int(o)): float(s)
            for o, s in zip(q.sparse.ordinals, q.sparse.scores, strict=True)
        }
        for qid, q in runs.queries.items()
    }


def method_metrics(runs: ArmRuns) -> dict[str, dict[str, float]]:
    """Every method's metrics (nDCG@10, R@100, ...) on one collection's runs."""
    table = {"BM25": evaluate(bm25_run(runs), runs.qrels)}
    for method, fuser in HYBRIDS.items():
        table[method] = evaluate(fused_run(runs, fuser), runs.qrels)
    return table


#: REFERENCE.md's hybrid means over the seven collections with Pyserini's Lucene BM25.
REFERENCE_HYBRID = {"hybrid min-max": 0.569, "hybrid z-score": 0.571}


def render_lucene_arm(figures: dict[str, dict[str, Any]], names: list[str]) -> list[str]:
    """The docs/effectiveness.md section of `scripts/eval_lucene.py`'s JSON."""
    names = [n for n in names if n in figures]
    lines = [
        "## Lucene sparse arm (`--sparse-backend lucene`) next to tantivy",
        "",
        "Made by `scripts/eval_lucene.py` (`hybridsearch.eval.lucene_arm`): each collection's "
        "BM25-only Lucene index built by `--sparse-backend lucene` (Anserini's analyser, k1 "
        "0.9, b 0.4, title + text as one field), its run 1000 deep per judged query, fused "
        "with the same cached MiniLM dense run as the tantivy rows (`var/eval/arm-runs`) by "
        "the server's fusion functions (alpha 0.5; RRF k 60). nDCG@10:",
        "",
        "| arm | method | " + " | ".join(names) + " | mean |",
        "|---|---|" + "---:|" * (len(names) + 1),
    ]
    means: dict[tuple[str, str], float] = {}
    for side in ("tantivy", "lucene"):
        for method in METHODS:
            values = [float(figures[n][side][method]["nDCG@10"]) for n in names]
            means[side, method] = sum(values) / len(values)
            cells = " | ".join(f"{v:.3f}" for v in [*values, means[side, method]])
            lines.append(f"| {side} | {method} | {cells} |")
    lines.append("")
    for method, reference in REFERENCE_HYBRID.items():
        lines.append(
            f"- {method}: Lucene arm mean {means['lucene', method]:.3f} (REFERENCE.md, "
            f"Pyserini's BM25 + MiniLM: {reference:.3f}); tantivy arm "
            f"{means['tantivy', method]:.3f}."
        )
    lines.append(
        f"- BM25 alone: Lucene {means['lucene', 'BM25']:.3f}, tantivy "
        f"{means['tantivy', 'BM25']:.3f} (REFERENCE.md: .490 and .499)."
    )
    return lines
