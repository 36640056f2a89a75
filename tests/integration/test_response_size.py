"""Answers over ``--max-message-bytes``, on a real server over gRPC: refused by the server with
RESOURCE_EXHAUSTED saying what to ask for instead (in-band on a SearchStream), and counted so.

grpc refused them itself once they were produced: the client saw 'Sent message larger than
max', while the metrics counted the unary call OK and the stream CANCELLED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import TINY_CORPUS
from tests.fakes import build_fake_index
from tests.integration.in_process import InProcessServer, in_process_server, serving_fake_index

LIMIT = 600  # bytes: a few hits with title and text are more, one bare hit far less
CALLS = "hybridsearch_rpc_calls_total"
WAIT_S = 30.0  # a call is counted as its handler ends, just after its client has the status


def counted(server: InProcessServer, method: str, code: str) -> float | None:
    """The calls of ``method`` counted with ``code``, once there are any (or after `WAIT_S`)."""
    ends = time.monotonic() + WAIT_S
    while (value := server.metric(CALLS, method=method, code=code)) is None:
        if time.monotonic() > ends:
            return None
        time.sleep(0.02)
    return value


def large(query: str = "flow wing heat layer") -> pb.SearchRequest:
    """A query whose answer (every hit, with its title and text) is over `LIMIT`."""
    return pb.SearchRequest(
        query=query,
        mode=pb.RETRIEVAL_MODE_SPARSE,
        top_k=12,
        return_fields=[pb.STORED_FIELD_TITLE, pb.STORED_FIELD_TEXT],
    )


def small() -> pb.SearchRequest:
    return pb.SearchRequest(query="flow", mode=pb.RETRIEVAL_MODE_SPARSE, top_k=1)


@pytest.fixture(scope="module")
def server(tiny_sparse_index: Path) -> Iterator[InProcessServer]:
    settings = ServerSettings(index=tiny_sparse_index, port=0, max_message_bytes=LIMIT)
    with in_process_server(settings) as served:
        yield served


@pytest.fixture
def stub(server: InProcessServer) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


def assert_actionable(message: str) -> None:
    assert f"over the server's limit of {LIMIT} bytes" in message
    assert "--max-message-bytes" in message
    assert "top_k" in message and "return_fields" in message and "highlight" in message


def test_a_search_answer_over_the_limit_is_resource_exhausted_saying_what_to_lower(
    server: InProcessServer, stub: search_pb2_grpc.SearchServiceStub
) -> None:
    assert stub.Search(small()).hits
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(large())
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_actionable(info.value.details())
    assert counted(server, "SearchService/Search", "RESOURCE_EXHAUSTED") == 1
    with pytest.raises(grpc.RpcError) as batch:
        stub.BatchSearch(pb.BatchSearchRequest(requests=[small(), large()]))
    assert batch.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "send fewer requests per call" in batch.value.details()
    assert counted(server, "SearchService/BatchSearch", "RESOURCE_EXHAUSTED") == 1
    assert server.metric(CALLS, method="SearchService/BatchSearch", code="OK") is None


def test_a_stream_answer_over_the_limit_is_an_in_band_error_and_the_stream_goes_on(
    server: InProcessServer,
    stub: search_pb2_grpc.SearchServiceStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requests = [
        pb.SearchStreamRequest(request_id="big", search=large()),
        pb.SearchStreamRequest(request_id="after", search=small()),
    ]
    with caplog.at_level(logging.INFO, logger="hybridsearch.access"):
        call = stub.SearchStream(iter(requests))
        answers = {answer.request_id: answer for answer in call}
        assert call.code() == grpc.StatusCode.OK
    assert answers["after"].response.hits
    error = answers["big"].error
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert_actionable(error.message)
    assert counted(server, "SearchService/SearchStream", "OK") == 1
    assert server.metric(CALLS, method="SearchService/SearchStream", code="CANCELLED") is None
    logged = [r.getMessage() for r in caplog.records if r.name == "hybridsearch.access"]
    assert any("request 'big' RESOURCE_EXHAUSTED" in line for line in logged)


def test_a_progressive_answer_over_the_limit_is_one_error_response(tmp_path: Path) -> None:
    """The partial (BM25-only) answer is as large as the final one: it is not sent, and the
    final response is the request's error."""
    index = build_fake_index(tmp_path / "hybrid", list(read_corpus(TINY_CORPUS)))
    hybrid = pb.SearchRequest(
        query="flow wing heat layer", top_k=12, return_fields=[pb.STORED_FIELD_TEXT]
    )
    with (
        serving_fake_index(index, max_message_bytes=LIMIT) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = search_pb2_grpc.SearchServiceStub(channel)
        request = pb.SearchStreamRequest(request_id="big", search=hybrid, progressive=True)
        (answer,) = stub.SearchStream(iter([request]))
    assert not answer.partial
    assert answer.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert_actionable(answer.error.message)
