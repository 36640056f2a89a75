"""SearchService over gRPC on a live server with a BM25-only index."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from hybridsearch.cli.channel import report_rpc_error
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.integration.in_process import InProcessServer

SPARSE = pb.RETRIEVAL_MODE_SPARSE


@pytest.fixture(scope="module")
def stub(sparse_server: InProcessServer) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(sparse_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


def violations(error: grpc.RpcError) -> dict[str, str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            found = {}
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                assert detail.Unpack(bad)
                found.update({v.field: v.description for v in bad.field_violations})
            return found
    return {}


def test_golden_sparse_ranking(stub: search_pb2_grpc.SearchServiceStub) -> None:
    response = stub.Search(pb.SearchRequest(query="laminar boundary layer", top_k=4, mode=SPARSE))
    assert [h.id for h in response.hits] == GOLDEN_IDS
    assert [round(h.score, 4) for h in response.hits] == GOLDEN_SCORES
    assert [h.rank for h in response.hits] == [1, 2, 3, 4]
    assert response.applied.mode == SPARSE
    assert response.applied.top_k == 4
    assert response.timings.total_us >= response.timings.sparse_us > 0


# tantivy BM25 (k1 1.2, b 0.75) over title + text of tests/fixtures/tiny_corpus.jsonl
GOLDEN_IDS = ["d01", "d11", "d07", "d06"]
GOLDEN_SCORES = [4.1714, 4.1143, 3.6275, 2.9293]


def test_default_top_k_and_no_fields(stub: search_pb2_grpc.SearchServiceStub) -> None:
    response = stub.Search(pb.SearchRequest(query="the flow", mode=SPARSE))
    assert 0 < len(response.hits) <= 10
    assert response.applied.top_k == 10
    assert not response.hits[0].HasField("title")
    assert not response.hits[0].HasField("explanation")


def test_requested_fields_and_explanation(stub: search_pb2_grpc.SearchServiceStub) -> None:
    request = pb.SearchRequest(
        query="pasta tomato",
        top_k=1,
        mode=SPARSE,
        explain=True,
        return_fields=[pb.STORED_FIELD_TITLE, pb.STORED_FIELD_TEXT, pb.STORED_FIELD_METADATA],
    )
    hit = stub.Search(request).hits[0]
    assert (hit.id, hit.title) == ("d04", "Pasta recipes")
    assert hit.text.startswith("Boil the pasta")
    assert list(hit.metadata["tags"]) == ["food"]
    assert hit.explanation.HasField("sparse") and not hit.explanation.HasField("dense")
    assert hit.explanation.sparse.rank == 1
    assert math.isclose(hit.explanation.sparse.raw_score, hit.score)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.SearchRequest(query="", mode=SPARSE), "query"),
        (pb.SearchRequest(query=" \t\n ", mode=SPARSE), "query"),
        (pb.SearchRequest(query="x" * 5000, mode=SPARSE), "query"),
        (pb.SearchRequest(query="flow", top_k=1001, mode=SPARSE), "top_k"),
        (pb.SearchRequest(query="flow", mode=7), "mode"),  # type: ignore[arg-type]
        (pb.SearchRequest(query="flow", return_fields=[9]), "return_fields[0]"),  # type: ignore[list-item]
        (
            pb.SearchRequest(query="flow", fusion=pb.FusionOptions(alpha=float("nan"))),
            "fusion.alpha",
        ),
        (pb.SearchRequest(query="flow", fusion=pb.FusionOptions(alpha=1.5)), "fusion.alpha"),
        (pb.SearchRequest(query="flow", fusion=pb.FusionOptions(rrf_k=0)), "fusion.rrf_k"),
        (
            pb.SearchRequest(query="flow", fusion=pb.FusionOptions(sparse_depth=5000)),
            "fusion.sparse_depth",
        ),
    ],
)
def test_invalid_argument_names_the_field(
    stub: search_pb2_grpc.SearchServiceStub, request_: pb.SearchRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(info.value)


HOSTILE_QUERIES = [
    '"AND (((',
    "title:",
    "*",
    "\\",
    "(" * 10_000 + "flow" + ")" * 10_000,
    "[" * 3000 + "{" * 1000,
    "x" * (1024 * 1024),
    "🚀 supersonic 🔥 flow ✈️",
    "超音速の境界層 边界层 경계층",
    "flow\x00layer\x00",
    'NOT OR AND +-&&||!(){}[]^"~*?:\\/',
    "a" * 41 + " boundary",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
def test_hostile_queries_get_results_or_invalid_argument(
    stub: search_pb2_grpc.SearchServiceStub, query: str
) -> None:
    try:
        response = stub.Search(pb.SearchRequest(query=query, mode=SPARSE, top_k=5))
        assert len(response.hits) <= 5
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "query" in violations(error)
    # the server still answers
    assert stub.Search(pb.SearchRequest(query="flow", mode=SPARSE)).hits


@pytest.mark.parametrize("mode", [pb.RETRIEVAL_MODE_DENSE, pb.RETRIEVAL_MODE_HYBRID, 0])
def test_dense_modes_on_bm25_only_index_fail_precondition(
    stub: search_pb2_grpc.SearchServiceStub, mode: pb.RetrievalMode.ValueType
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(pb.SearchRequest(query="flow", mode=mode))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SPARSE" in (info.value.details() or "")


def test_batch_search_keeps_request_order(stub: search_pb2_grpc.SearchServiceStub) -> None:
    queries = ["pasta", "tennis match", "rocket nozzle"]
    batch = pb.BatchSearchRequest(
        requests=[pb.SearchRequest(query=q, top_k=1, mode=SPARSE) for q in queries]
    )
    response = stub.BatchSearch(batch)
    assert [r.hits[0].id for r in response.responses] == ["d04", "d12", "d09"]


def test_batch_search_names_the_bad_request(stub: search_pb2_grpc.SearchServiceStub) -> None:
    batch = pb.BatchSearchRequest(
        requests=[
            pb.SearchRequest(query="pasta", mode=SPARSE),
            pb.SearchRequest(query="  ", mode=SPARSE),
        ]
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchSearch(batch)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "requests[1].query" in violations(info.value)
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchSearch(pb.BatchSearchRequest())
    assert "requests" in violations(info.value)


def test_the_cli_lists_a_batchs_repeated_violation_once(
    stub: search_pb2_grpc.SearchServiceStub, capsys: pytest.CaptureFixture[str]
) -> None:
    """`eval --server --top-k 5000`: one line per request (35 of them, under a first line
    that joined them all) became one line naming the requests."""
    bad = [pb.SearchRequest(query="flow", top_k=5000, mode=SPARSE) for _ in range(4)]
    batch = pb.BatchSearchRequest(requests=[*bad[:2], pb.SearchRequest(query="x"), *bad[2:]])
    batch.requests[2].mode = SPARSE
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchSearch(batch)
    report_rpc_error(info.value, argparse.Namespace(tls=False, tls_ca=None, tls_cert=None))
    assert capsys.readouterr().err.splitlines() == [
        "error: INVALID_ARGUMENT: 4 invalid fields",
        "  requests[0-1, 3-4].top_k: must be in [0, 1000] (got 5000)",
    ]


def test_search_stream_answers_every_request_and_survives_a_bad_one(
    stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    words = ["flow", "pasta", "tennis", "rocket", "shock", "bread", "flutter", "rice"]
    requests = [
        pb.SearchStreamRequest(
            request_id=f"q{i}", search=pb.SearchRequest(query=words[i % 8], top_k=3, mode=SPARSE)
        )
        for i in range(100)
    ]
    requests.insert(50, pb.SearchStreamRequest(request_id="bad", search=pb.SearchRequest()))
    answers = {r.request_id: r for r in stub.SearchStream(iter(requests))}
    assert set(answers) == {r.request_id for r in requests}
    bad = answers["bad"]
    assert bad.WhichOneof("result") == "error"
    assert bad.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in bad.error.field_violations] == ["query"]
    assert answers["q1"].response.hits[0].id == "d04"
    assert all(answers[f"q{i}"].WhichOneof("result") == "response" for i in range(100))
