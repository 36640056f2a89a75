"""SearchStream on a hybrid index: progressive (BM25 first, then fused) results; cancellation."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.integration.in_process import InProcessServer

QUERIES = ["pasta tomato", "laminar boundary layer", "tennis match", "rocket nozzle", "bread"]


@pytest.fixture(scope="module")
def channel(hybrid_server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(hybrid_server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> search_pb2_grpc.SearchServiceStub:
    return search_pb2_grpc.SearchServiceStub(channel)


def test_progressive_sends_bm25_first_then_fused(stub: search_pb2_grpc.SearchServiceStub) -> None:
    requests = [
        pb.SearchStreamRequest(
            request_id=f"q{i}", search=pb.SearchRequest(query=q, top_k=5), progressive=True
        )
        for i, q in enumerate(QUERIES)
    ]
    answers: dict[str, list[pb.SearchStreamResponse]] = defaultdict(list)
    for response in stub.SearchStream(iter(requests)):
        answers[response.request_id].append(response)
    assert set(answers) == {r.request_id for r in requests}
    for i, query in enumerate(QUERIES):
        partial, final = answers[f"q{i}"]  # exactly two, partial first
        assert partial.partial and not final.partial
        assert partial.response.applied.mode == pb.RETRIEVAL_MODE_SPARSE
        assert final.response.applied.mode == pb.RETRIEVAL_MODE_HYBRID
        sparse = stub.Search(pb.SearchRequest(query=query, top_k=5, mode=pb.RETRIEVAL_MODE_SPARSE))
        hybrid = stub.Search(pb.SearchRequest(query=query, top_k=5))
        assert [h.id for h in partial.response.hits] == [h.id for h in sparse.hits]
        assert [h.id for h in final.response.hits] == [h.id for h in hybrid.hits]


def test_progressive_is_one_final_answer_outside_hybrid_mode_or_on_error(
    stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    requests = [
        pb.SearchStreamRequest(
            request_id="sparse",
            search=pb.SearchRequest(query="pasta", mode=pb.RETRIEVAL_MODE_SPARSE),
            progressive=True,
        ),
        pb.SearchStreamRequest(request_id="bad", search=pb.SearchRequest(), progressive=True),
        pb.SearchStreamRequest(request_id="plain", search=pb.SearchRequest(query="pasta")),
    ]
    answers = list(stub.SearchStream(iter(requests)))
    assert sorted(a.request_id for a in answers) == ["bad", "plain", "sparse"]
    assert not any(a.partial for a in answers)
    bad = next(a for a in answers if a.request_id == "bad")
    assert bad.WhichOneof("result") == "error"
    assert [v.field for v in bad.error.field_violations] == ["query"]


def test_cancelling_a_stream_stops_its_work(
    stub: search_pb2_grpc.SearchServiceStub, channel: grpc.Channel
) -> None:
    sent = itertools.count()

    def endless() -> Iterator[pb.SearchStreamRequest]:
        for i in sent:
            query = QUERIES[i % len(QUERIES)]
            # Heavy requests (every document, explained, all fields) so pending work piles up.
            search = pb.SearchRequest(
                query=query, top_k=1000, explain=True, return_fields=[pb.STORED_FIELD_TEXT]
            )
            yield pb.SearchStreamRequest(request_id=f"e{i}", search=search, progressive=True)

    call = stub.SearchStream(endless())
    for _, _ in zip(range(20), call, strict=False):
        pass
    call.cancel()
    with pytest.raises(grpc.RpcError) as info:
        next(call)
    assert info.value.code() == grpc.StatusCode.CANCELLED
    # The server stopped reading the endless stream: it stays healthy and answers at once.
    health = health_pb2_grpc.HealthStub(channel)
    check = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    for query in QUERIES:
        response = stub.Search(pb.SearchRequest(query=query, top_k=3), timeout=5)
        assert response.hits
