"""Hybrid search over gRPC on the tiny corpus with vectors of the default model (golden)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.integration.in_process import InProcessServer

QUERY = "airflow over an aircraft wing"


@pytest.fixture(scope="module")
def stub(hybrid_server: InProcessServer) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(hybrid_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


@pytest.mark.parametrize(
    ("mode", "golden"),
    [
        # BM25 matches only "wing" (d03): "over" is in no document and "an" is a stopword,
        # left out of the query (it matched d07 before); the dense arm ranks the
        # laminar-airfoil abstract first; min-max fusion at alpha 0.5 puts the document
        # strong on both sides first.
        (pb.RETRIEVAL_MODE_SPARSE, ["d03"]),
        (pb.RETRIEVAL_MODE_DENSE, ["d11", "d03", "d01", "d07", "d06"]),
        (pb.RETRIEVAL_MODE_HYBRID, ["d03", "d11", "d01", "d07", "d06"]),
        (pb.RETRIEVAL_MODE_UNSPECIFIED, ["d03", "d11", "d01", "d07", "d06"]),
    ],
)
def test_golden_rankings(
    stub: search_pb2_grpc.SearchServiceStub, mode: pb.RetrievalMode.ValueType, golden: list[str]
) -> None:
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, mode=mode))
    assert [h.id for h in response.hits] == golden


def test_golden_rrf(stub: search_pb2_grpc.SearchServiceStub) -> None:
    fusion = pb.FusionOptions(method=pb.FUSION_METHOD_RRF)
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, fusion=fusion))
    # d03 is first in BM25 and second in the dense list; the rest come from the dense arm.
    assert [h.id for h in response.hits] == ["d03", "d11", "d01", "d07", "d06"]
    assert response.hits[0].score == pytest.approx(1 / 61 + 1 / 62)


def test_explanation_adds_up(stub: search_pb2_grpc.SearchServiceStub) -> None:
    fusion = pb.FusionOptions(alpha=0.3)
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, explain=True, fusion=fusion))
    assert response.applied.fusion.alpha == pytest.approx(0.3)
    assert response.applied.fusion.normalization == pb.SCORE_NORMALIZATION_MIN_MAX
    for hit in response.hits:
        e = hit.explanation
        assert e.HasField("dense")  # every hit of this query was retrieved densely
        sparse_norm = e.sparse.normalized_score if e.HasField("sparse") else 0.0
        expected = 0.3 * e.dense.normalized_score + 0.7 * sparse_norm
        assert math.isclose(hit.score, expected, abs_tol=1e-9)
        assert math.isclose(e.fused_score, hit.score)
    top = response.hits[0].explanation
    assert (top.sparse.rank, top.dense.rank) == (1, 2)
    assert top.sparse.normalized_score == 1.0


def test_timings_cover_both_arms(stub: search_pb2_grpc.SearchServiceStub) -> None:
    t = stub.Search(pb.SearchRequest(query=QUERY, top_k=3)).timings
    assert t.encode_us > 0 and t.sparse_us > 0 and t.dense_us > 0
    assert t.total_us >= max(t.encode_us + t.dense_us, t.sparse_us)


def test_batch_search_equals_single_searches(stub: search_pb2_grpc.SearchServiceStub) -> None:
    queries = [QUERY, "cooking pasta and rice", "a tennis match"]
    batch = stub.BatchSearch(
        pb.BatchSearchRequest(requests=[pb.SearchRequest(query=q, top_k=3) for q in queries])
    )
    for query, response in zip(queries, batch.responses, strict=True):
        single = stub.Search(pb.SearchRequest(query=query, top_k=3))
        assert [h.id for h in response.hits] == [h.id for h in single.hits]
        assert [h.score for h in response.hits] == pytest.approx([h.score for h in single.hits])
