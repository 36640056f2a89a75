"""Pseudo-relevance feedback over gRPC: settings round-trip, rankings change, bad fields named."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.integration.in_process import InProcessServer
from tests.integration.test_sparse_api import violations

SPARSE = pb.RETRIEVAL_MODE_SPARSE
DENSE = pb.RETRIEVAL_MODE_DENSE
QUERY = "boundary layer"


@pytest.fixture(scope="module")
def hybrid_stub(hybrid_server: InProcessServer) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(hybrid_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


@pytest.fixture(scope="module")
def sparse_stub(sparse_server: InProcessServer) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(sparse_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


def ranking(response: pb.SearchResponse) -> list[tuple[str, float]]:
    return [(hit.id, round(hit.score, 6)) for hit in response.hits]


def test_prf_is_off_by_default(hybrid_stub: search_pb2_grpc.SearchServiceStub) -> None:
    response = hybrid_stub.Search(pb.SearchRequest(query=QUERY, explain=True))
    assert not response.applied.HasField("prf")
    assert response.timings.prf_us == 0
    assert len(response.expansion_terms) == 0


def test_rm3_round_trips_and_changes_the_sparse_ranking(
    sparse_stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    plain = sparse_stub.Search(pb.SearchRequest(query=QUERY, top_k=12, mode=SPARSE))
    prf = pb.PrfOptions(rm3=True, fb_docs=3, fb_terms=20, original_query_weight=0.3)
    response = sparse_stub.Search(
        pb.SearchRequest(query=QUERY, top_k=12, mode=SPARSE, prf=prf, explain=True)
    )
    assert ranking(response) != ranking(plain)
    applied = response.applied.prf
    assert applied.rm3
    assert (applied.fb_docs, applied.fb_terms) == (3, 20)
    assert applied.original_query_weight == pytest.approx(0.3)
    # The dense-arm part does not run in SPARSE mode, so it is not echoed as applied.
    assert applied.vector_method == pb.VECTOR_PRF_METHOD_UNSPECIFIED
    assert response.timings.prf_us > 0
    terms = {t.term: t.weight for t in response.expansion_terms}
    assert {"boundari", "layer"} <= terms.keys()  # the analysed query terms stay
    assert len(terms) > 2  # and feedback terms join them
    assert sum(terms.values()) == pytest.approx(1.0)
    weights = [t.weight for t in response.expansion_terms]
    assert weights == sorted(weights, reverse=True)


def test_expansion_terms_only_with_explain(sparse_stub: search_pb2_grpc.SearchServiceStub) -> None:
    response = sparse_stub.Search(
        pb.SearchRequest(query=QUERY, mode=SPARSE, prf=pb.PrfOptions(rm3=True))
    )
    assert response.applied.prf.rm3
    assert len(response.expansion_terms) == 0


def test_vector_prf_round_trips_and_changes_the_dense_ranking(
    hybrid_stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    plain = hybrid_stub.Search(pb.SearchRequest(query=QUERY, top_k=12, mode=DENSE))
    prf = pb.PrfOptions(vector_method=pb.VECTOR_PRF_METHOD_ROCCHIO, rocchio_alpha=0.2)
    response = hybrid_stub.Search(pb.SearchRequest(query=QUERY, top_k=12, mode=DENSE, prf=prf))
    assert ranking(response) != ranking(plain)
    applied = response.applied.prf
    assert applied.vector_method == pb.VECTOR_PRF_METHOD_ROCCHIO
    assert applied.vector_depth == 5  # Rocchio's default depth
    assert (applied.rocchio_alpha, applied.rocchio_beta) == pytest.approx((0.2, 0.6))
    assert not applied.rm3


@pytest.mark.parametrize("stage", [pb.PRF_STAGE_BEFORE, pb.PRF_STAGE_AFTER, pb.PRF_STAGE_BOTH])
def test_hybrid_stages_round_trip(
    hybrid_stub: search_pb2_grpc.SearchServiceStub, stage: pb.PrfStage.ValueType
) -> None:
    plain = hybrid_stub.Search(pb.SearchRequest(query=QUERY, top_k=12))
    prf = pb.PrfOptions(vector_method=pb.VECTOR_PRF_METHOD_AVERAGE, hybrid_stage=stage)
    response = hybrid_stub.Search(pb.SearchRequest(query=QUERY, top_k=12, prf=prf, explain=True))
    assert response.applied.prf.hybrid_stage == stage
    assert response.applied.prf.vector_depth == 3  # Average's default depth
    assert response.timings.prf_us > 0
    assert ranking(response) != ranking(plain)
    if stage == pb.PRF_STAGE_BEFORE:
        # Interpolation before PRF only: the dense second round is the result.
        assert all(not h.explanation.HasField("sparse") for h in response.hits)
    else:
        assert any(h.explanation.HasField("sparse") for h in response.hits)


def test_both_arms_in_one_batch(hybrid_stub: search_pb2_grpc.SearchServiceStub) -> None:
    prf = pb.PrfOptions(rm3=True, vector_method=pb.VECTOR_PRF_METHOD_ROCCHIO)
    batch = pb.BatchSearchRequest(
        requests=[
            pb.SearchRequest(query=QUERY, prf=prf),
            pb.SearchRequest(query="pasta sauce", mode=SPARSE, prf=prf),
            pb.SearchRequest(query="rocket thrust"),
        ]
    )
    first, second, third = hybrid_stub.BatchSearch(batch).responses
    assert first.applied.prf.rm3
    assert first.applied.prf.vector_method == pb.VECTOR_PRF_METHOD_ROCCHIO
    assert second.applied.prf.rm3
    assert second.applied.prf.vector_method == pb.VECTOR_PRF_METHOD_UNSPECIFIED
    assert not third.applied.HasField("prf")


@pytest.mark.parametrize(
    ("prf", "field"),
    [
        (pb.PrfOptions(rm3=True, fb_docs=0), "prf.fb_docs"),
        (pb.PrfOptions(rm3=True, fb_docs=101), "prf.fb_docs"),
        (pb.PrfOptions(rm3=True, fb_terms=0), "prf.fb_terms"),
        (pb.PrfOptions(original_query_weight=1.5), "prf.original_query_weight"),
        (pb.PrfOptions(original_query_weight=float("nan")), "prf.original_query_weight"),
        (pb.PrfOptions(vector_depth=0), "prf.vector_depth"),
        (pb.PrfOptions(rocchio_alpha=-1.0), "prf.rocchio_alpha"),
        (pb.PrfOptions(rocchio_beta=float("inf")), "prf.rocchio_beta"),
        (pb.PrfOptions(rocchio_alpha=0.0, rocchio_beta=0.0), "prf.rocchio_alpha"),
        (pb.PrfOptions(vector_method=9), "prf.vector_method"),  # type: ignore[arg-type]
        (pb.PrfOptions(hybrid_stage=9), "prf.hybrid_stage"),  # type: ignore[arg-type]
    ],
)
def test_invalid_prf_fields_are_named(
    sparse_stub: search_pb2_grpc.SearchServiceStub, prf: pb.PrfOptions, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        sparse_stub.Search(pb.SearchRequest(query=QUERY, mode=SPARSE, prf=prf))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(info.value)
