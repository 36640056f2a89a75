"""Effectiveness floors on real collections (nDCG@10 via ir-measures, all judged queries).

For scale, the same models scored outside this project: SciFact BM25 (tantivy) 0.685,
MiniLM dense 0.645, min-max hybrid 0.728-0.735; Cranfield BM25 0.370, dense 0.382, hybrid
0.419 (../shared/design/REFERENCE.md). Skipped, saying so, when ../shared/data is absent.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.encoders.onnx_encoder import OnnxEncoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.eval.collection import Collection, load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Query, RetrievalMode

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
DEPTH = 1000


def ndcg10(engine: HybridSearcher, collection: Collection, mode: RetrievalMode) -> float:
    queries = collection.judged_queries
    # the server defaults: these floors hold for what a caller gets without tuning
    fusion = ServerSettings().fusion_defaults
    template = Query(text="", top_k=DEPTH, mode=mode, fusion=fusion)
    batch = [replace(template, text=text) for text in queries.values()]
    run = {}
    for start in range(0, len(batch), 64):
        results = engine.search_batch(batch[start : start + 64])
        for qid, result in zip(list(queries)[start : start + 64], results, strict=True):
            run[qid] = {hit.id: hit.score for hit in result.hits}
    return evaluate(run, collection.qrels)["nDCG@10"]


@pytest.fixture(scope="module")
def scores(
    shared_data: Path, query_encoder: OnnxEncoder, scifact_index: Path, cranfield_index: Path
) -> dict[str, dict[str, float]]:
    """nDCG@10 of each mode on SciFact and Cranfield (the session's shared indexes)."""
    table: dict[str, dict[str, float]] = {}
    for name, index in (("scifact", scifact_index), ("cranfield", cranfield_index)):
        collection = load_beir(shared_data / name)
        engine = HybridSearcher(open_index(index), query_encoder)
        try:
            table[name] = {mode.value: ndcg10(engine, collection, mode) for mode in RetrievalMode}
        finally:
            engine.close()
    print(table)
    return table


def test_scifact_floors(scores: dict[str, dict[str, float]]) -> None:
    scifact = scores["scifact"]
    assert scifact["sparse"] >= 0.66
    assert scifact["dense"] >= 0.635
    assert scifact["hybrid"] >= 0.72
    assert scifact["hybrid"] >= max(scifact["sparse"], scifact["dense"]) + 0.02


def test_cranfield_floors(scores: dict[str, dict[str, float]]) -> None:
    cranfield = scores["cranfield"]
    assert cranfield["sparse"] >= 0.35
    assert cranfield["hybrid"] >= max(cranfield["sparse"], cranfield["dense"]) + 0.02
