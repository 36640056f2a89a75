"""Live ingestion makes the same index as a bulk build (Cranfield, 1,400 documents).

Cranfield is streamed through `hybridsearch ingest` into an index created with `hybridsearch
index --empty` and served in-process, then compared with the session's bulk-built Cranfield
index (`cranfield_index`, shared with the effectiveness tests): the same documents with the
same vectors, the same BM25 ranking for every judged query, the same hybrid nDCG@10.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.config import ServerSettings
from hybridsearch.encoders.onnx_encoder import OnnxEncoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.eval.collection import Collection, load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.types import Query, RetrievalMode
from tests.conftest import run_cli
from tests.integration.in_process import in_process_server

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
CRANFIELD_DOCS = 1400
# Documents are encoded in other batches on each path (padding differs): float noise only.
VECTOR_ATOL = 1e-4


@pytest.fixture(scope="module")
def cranfield(shared_data: Path) -> Collection:
    return load_beir(shared_data / "cranfield")


@pytest.fixture(scope="module")
def ingested(
    cranfield: Collection, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Cranfield sent through `hybridsearch ingest` to a server over an empty index."""
    index = tmp_path_factory.mktemp("ingest") / "cranfield-live"
    run_cli("index", "--empty", "--out", str(index), "--model", str(model_dir), "--no-progress")
    with in_process_server(ServerSettings(index=index, model=model_dir, port=0)) as server:
        result = run_cli(
            "ingest", "--server", server.address, "--corpus", str(cranfield.corpus_path),
            "--batch-size", "128", "--no-progress",
        )  # fmt: skip
    assert f"accepted {CRANFIELD_DOCS} documents" in result.stdout, result.stdout
    return index


@pytest.fixture(scope="module")
def engines(
    ingested: Path, cranfield_index: Path, query_encoder: OnnxEncoder
) -> Iterator[tuple[HybridSearcher, HybridSearcher]]:
    """Searchers over the ingested and the bulk-built index."""
    live = HybridSearcher(open_index(ingested), query_encoder)
    bulk = HybridSearcher(open_index(cranfield_index), query_encoder)
    try:
        yield live, bulk
    finally:
        live.close()
        bulk.close()


def vectors_by_id(index: OpenIndex) -> dict[str, NDArray[np.float32]]:
    """Each live document's vector."""
    assert index.vectors is not None
    return {
        doc_id: index.vectors[ordinal]
        for ordinal, doc_id in enumerate(index.ids)
        if index.is_live(ordinal)
    }


def run_of(
    engine: HybridSearcher, collection: Collection, mode: RetrievalMode, top_k: int
) -> dict[str, list[tuple[str, float]]]:
    """Each judged query's ranking: (document id, score), best first."""
    queries = collection.judged_queries
    template = Query(text="", top_k=top_k, mode=mode)
    results = engine.search_batch([dataclasses.replace(template, text=t) for t in queries.values()])
    return {
        qid: [(hit.id, hit.score) for hit in result.hits]
        for qid, result in zip(queries, results, strict=True)
    }


def ndcg10(run: dict[str, list[tuple[str, float]]], collection: Collection) -> float:
    return evaluate({q: dict(hits) for q, hits in run.items()}, collection.qrels)["nDCG@10"]


def test_ingested_documents_have_the_bulk_builds_vectors(
    ingested: Path, cranfield_index: Path
) -> None:
    live = vectors_by_id(open_index(ingested))
    bulk = vectors_by_id(open_index(cranfield_index))
    assert len(bulk) == CRANFIELD_DOCS
    assert live.keys() == bulk.keys()
    ids = sorted(bulk)
    np.testing.assert_allclose(
        np.stack([live[i] for i in ids]), np.stack([bulk[i] for i in ids]), atol=VECTOR_ATOL
    )


def test_ingested_bm25_ranks_every_document_like_the_bulk_build(
    engines: tuple[HybridSearcher, HybridSearcher], cranfield: Collection
) -> None:
    live_engine, bulk_engine = engines
    # Every matching document (not a top k, whose cut could fall inside a tie).
    live = run_of(live_engine, cranfield, RetrievalMode.SPARSE, CRANFIELD_DOCS)
    bulk = run_of(bulk_engine, cranfield, RetrievalMode.SPARSE, CRANFIELD_DOCS)
    for qid, ranking in bulk.items():
        assert ranking, qid
        assert [doc for doc, _ in live[qid]] == [doc for doc, _ in ranking], qid
        assert [s for _, s in live[qid]] == pytest.approx([s for _, s in ranking], rel=1e-5)
    assert ndcg10(bulk, cranfield) >= 0.35  # the effectiveness floor: both really are Cranfield


def test_ingested_hybrid_scores_like_the_bulk_build(
    engines: tuple[HybridSearcher, HybridSearcher], cranfield: Collection
) -> None:
    live_engine, bulk_engine = engines
    live = ndcg10(run_of(live_engine, cranfield, RetrievalMode.HYBRID, 100), cranfield)
    bulk = ndcg10(run_of(bulk_engine, cranfield, RetrievalMode.HYBRID, 100), cranfield)
    print(f"Cranfield hybrid nDCG@10 ingest {live:.4f} index {bulk:.4f}")
    assert round(live, 3) == round(bulk, 3)
