"""Pagination and highlights through gRPC (and the CLI) on the tiny corpus."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import ServerProcess, run_cli

SPARSE = pb.RETRIEVAL_MODE_SPARSE
QUERY = "laminar boundary layer flow transition plate"


@pytest.fixture(scope="module")
def sparse_stub(sparse_server: ServerProcess) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(sparse_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


@pytest.fixture(scope="module")
def hybrid_stub(hybrid_server: ServerProcess) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(hybrid_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


def ranked(response: pb.SearchResponse) -> list[tuple[int, str, float]]:
    return [(hit.rank, hit.id, hit.score) for hit in response.hits]


def pages(
    stub: search_pb2_grpc.SearchServiceStub, request: pb.SearchRequest, size: int, count: int
) -> list[pb.SearchResponse]:
    found = []
    for page in range(count):
        paged = pb.SearchRequest()
        paged.CopyFrom(request)
        paged.top_k, paged.offset = size, page * size
        found.append(stub.Search(paged))
    return found


def test_sparse_pages_are_the_full_ranking_in_slices(
    sparse_stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    request = pb.SearchRequest(query=QUERY, mode=SPARSE)
    full = sparse_stub.Search(pb.SearchRequest(query=QUERY, mode=SPARSE, top_k=6))
    assert len(full.hits) == 5  # every document with a query term
    found = pages(sparse_stub, request, 2, 3)
    assert [hit for page in found for hit in ranked(page)] == ranked(full)
    assert [page.applied.offset for page in found] == [0, 2, 4]
    assert [hit.rank for hit in found[2].hits] == [5]  # the last page is short


@pytest.mark.parametrize("method", [pb.FUSION_METHOD_INTERPOLATION, pb.FUSION_METHOD_RRF])
def test_hybrid_pages_in_search_batch_and_stream(
    hybrid_stub: search_pb2_grpc.SearchServiceStub, method: pb.FusionMethod
) -> None:
    request = pb.SearchRequest(query=QUERY, fusion=pb.FusionOptions(method=method))
    full = hybrid_stub.Search(
        pb.SearchRequest(query=QUERY, top_k=9, fusion=pb.FusionOptions(method=method))
    )
    found = pages(hybrid_stub, request, 3, 3)
    assert [hit for page in found for hit in ranked(page)] == ranked(full)
    paged = [
        pb.SearchRequest(
            query=QUERY, top_k=3, offset=offset, fusion=pb.FusionOptions(method=method)
        )
        for offset in (0, 3, 6)
    ]
    batch = hybrid_stub.BatchSearch(pb.BatchSearchRequest(requests=paged))
    # (A batch encodes its queries together: scores may differ in the 7th digit.)
    assert [[(h.rank, h.id) for h in r.hits] for r in batch.responses] == [
        [(h.rank, h.id) for h in page.hits] for page in found
    ]
    stream = hybrid_stub.SearchStream(
        iter([pb.SearchStreamRequest(request_id="p2", search=paged[1], progressive=True)])
    )
    partial, final = stream
    assert partial.partial and partial.response.applied.offset == 3
    # The partial is BM25's ranking, which holds 5 documents: its ranks 4 and 5.
    assert [hit.rank for hit in partial.response.hits] == [4, 5]
    assert ranked(final.response) == ranked(found[1])


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            found = {}
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                assert detail.Unpack(bad)
                found.update({v.field: v.description for v in bad.field_violations})
            return found
    return {}


def test_an_offset_past_the_depth_is_invalid(
    sparse_stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    # A single-arm page may lie past any fusion depth: it ranks its arm offset + top_k deep.
    request = pb.SearchRequest(
        query=QUERY, mode=SPARSE, top_k=5, offset=1500, fusion=pb.FusionOptions(sparse_depth=24)
    )
    assert sparse_stub.Search(request).applied.offset == 1500
    with pytest.raises(grpc.RpcError) as info:
        sparse_stub.Search(pb.SearchRequest(query=QUERY, offset=10_001))
    assert field_violations(info.value) == {"offset": "must be in [0, 10000] (got 10001)"}


def test_highlights_mark_the_query_terms(
    sparse_stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    response = sparse_stub.Search(
        pb.SearchRequest(
            query="laminar flows",
            mode=SPARSE,
            top_k=1,
            highlight=pb.HighlightOptions(enabled=True, max_chars=40),
        )
    )
    (hit,) = response.hits
    assert hit.id == "d11"
    assert not hit.HasField("title") and not hit.HasField("text")  # not asked for
    title, text = hit.highlights
    assert (title.field, title.snippet) == (pb.STORED_FIELD_TITLE, "Laminar flow airfoils")
    assert [(s.start, s.end) for s in title.matches] == [(0, 7), (8, 12)]
    assert text.field == pb.STORED_FIELD_TEXT
    assert (
        text.snippet == "designed for laminar flow reduce drag by"
    )  # 40 chars, context both sides
    assert [text.snippet[s.start : s.end] for s in text.matches] == ["laminar", "flow"]


def test_cli_search_pages_and_highlights(sparse_server: ServerProcess) -> None:
    result = run_cli(
        "search", "laminar flow", "--server", sparse_server.address, "--mode", "sparse",
        "--top-k", "1", "--offset", "1", "--highlight",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["2", "d02"]
    assert "text: Measurements of heat transfer to a blunt body in hypersonic [flow]" in lines[2]
