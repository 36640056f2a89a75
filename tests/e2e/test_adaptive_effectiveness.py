"""Adaptive fusion's effectiveness on SciFact and Cranfield, against floors 0.01 below the
figures of `docs/effectiveness.md` (row "hybrid adaptive (shipped model)": the shipped model,
server defaults otherwise). Skipped, saying so, when ../shared/data is absent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.encoders.onnx_encoder import OnnxEncoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import FusionMethod, Query

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
DEPTH = 1000
REPORTED = {"scifact": 0.731, "cranfield": 0.419}  # docs/effectiveness.md, nDCG@10


def adaptive_ndcg10(shared_data: Path, name: str, index: Path, encoder: OnnxEncoder) -> float:
    collection = load_beir(shared_data / name)
    fusion = replace(ServerSettings().fusion_defaults, method=FusionMethod.ADAPTIVE)
    template = Query(text="", top_k=DEPTH, fusion=fusion)
    queries = collection.judged_queries
    batch = [replace(template, text=text) for text in queries.values()]
    engine = HybridSearcher(open_index(index), encoder)
    try:
        run = {}
        for start in range(0, len(batch), 64):
            results = engine.search_batch(batch[start : start + 64])
            for qid, result in zip(list(queries)[start : start + 64], results, strict=True):
                run[qid] = {hit.id: hit.score for hit in result.hits}
    finally:
        engine.close()
    return evaluate(run, collection.qrels)["nDCG@10"]


def test_scifact_adaptive_floor(
    shared_data: Path, query_encoder: OnnxEncoder, scifact_index: Path
) -> None:
    score = adaptive_ndcg10(shared_data, "scifact", scifact_index, query_encoder)
    assert score >= REPORTED["scifact"] - 0.01


def test_cranfield_adaptive_floor(
    shared_data: Path, query_encoder: OnnxEncoder, cranfield_index: Path
) -> None:
    score = adaptive_ndcg10(shared_data, "cranfield", cranfield_index, query_encoder)
    assert score >= REPORTED["cranfield"] - 0.01
