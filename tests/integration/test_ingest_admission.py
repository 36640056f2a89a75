"""Live ingest and the in-flight bound: an `UpsertDocuments` stream holds a place only while
a message of it is applied, so idle ingest streams keep no call out.

A real in-process server over a writable index with a gated query encoder: a dense search
holds the server's only place for as long as the test keeps the encoder, without sleeping.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2

from hybridsearch.config import ServerSettings
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.loader import LoadedIndex, compaction_policy
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.fakes import build_fake_index
from tests.integration.gated import WAIT_S, GatedEncoder
from tests.integration.in_process import InProcessServer, in_process_server

DOCUMENTS = [Document("a", "", "a cat sat on the mat"), Document("b", "", "a dog in the fog")]
Requests = queue.Queue[ipb.UpsertDocumentsRequest | None]


@dataclass
class IngestServer:
    server: InProcessServer
    encoder: GatedEncoder
    index: index_pb2_grpc.IndexServiceStub
    search: search_pb2_grpc.SearchServiceStub

    def wait_applied(self, documents: int) -> None:
        """Wait until the index holds ``documents`` and no call is in flight: a message sent
        has been applied and its stream is idle."""
        deadline = time.monotonic() + WAIT_S
        while (seen := self._gauges()) != (documents, 0):
            assert time.monotonic() < deadline, f"(documents, in flight) stayed {seen}"
            time.sleep(0.02)

    def _gauges(self) -> tuple[float | None, float | None]:
        return (
            self.server.metric("hybridsearch_index_documents"),
            self.server.metric("hybridsearch_in_flight_calls"),
        )

    def hold_the_place(self) -> grpc.Future:  # type: ignore[type-arg]
        """A dense search that holds the server's only place until `encoder.open`."""
        held = self.search.Search.future(
            pb.SearchRequest(query="held", mode=pb.RETRIEVAL_MODE_DENSE), timeout=WAIT_S
        )
        assert self.encoder.next_run() == ["held"]
        return held


@contextmanager
def ingest_server(tmp_path: Path, **settings: object) -> Iterator[IngestServer]:
    """A writable index of `DOCUMENTS` served with `max_in_flight` 1 (and ``settings``)."""
    index = build_fake_index(tmp_path / "index", DOCUMENTS)
    encoder = GatedEncoder()

    def load(current: ServerSettings) -> LoadedIndex:
        writer = IndexWriter(current.index)
        searcher = HybridSearcher(writer.committed(), encoder)
        return LoadedIndex(searcher, Ingestor(writer, searcher, compaction_policy(current)))

    config = ServerSettings(index=index, port=0, max_in_flight=1, **settings)  # type: ignore[arg-type]
    with in_process_server(config, load) as server:
        try:
            with grpc.insecure_channel(server.address) as channel:
                yield IngestServer(
                    server,
                    encoder,
                    index_pb2_grpc.IndexServiceStub(channel),
                    search_pb2_grpc.SearchServiceStub(channel),
                )
        finally:
            encoder.open()  # a search still held would hold the server's shutdown


def message(*ids: str) -> ipb.UpsertDocumentsRequest:
    return ipb.UpsertDocumentsRequest(
        documents=[ipb.Document(id=i, text=f"document {i} about owls") for i in ids]
    )


def sparse(text: str) -> pb.SearchRequest:
    return pb.SearchRequest(query=text, mode=pb.RETRIEVAL_MODE_SPARSE)


def test_an_idle_upsert_stream_holds_no_place(tmp_path: Path) -> None:
    """A stream counted as one call for its whole life: with --max-in-flight idle ingest
    streams open, every other call was refused with RESOURCE_EXHAUSTED."""
    with ingest_server(tmp_path) as served:
        served.encoder.open()
        requests: Requests = queue.Queue()
        upsert = served.index.UpsertDocuments.future(iter(requests.get, None), timeout=WAIT_S)
        requests.put(message("c"))
        served.wait_applied(3)  # the stream is open, and idle
        assert [h.id for h in served.search.Search(sparse("owls"), timeout=WAIT_S).hits] == ["c"]
        requests.put(message("d"))
        requests.put(None)
        response = upsert.result(timeout=WAIT_S)
    assert (response.accepted_count, response.rejected_count) == (2, 0)


def test_a_message_that_finds_the_server_full_is_refused_unapplied(tmp_path: Path) -> None:
    with ingest_server(tmp_path) as served:
        requests: Requests = queue.Queue()
        upsert = served.index.UpsertDocuments.future(iter(requests.get, None), timeout=WAIT_S)
        requests.put(message("c"))
        served.wait_applied(3)
        held = served.hold_the_place()
        requests.put(message("d"))
        with pytest.raises(grpc.RpcError) as refused:
            upsert.result(timeout=WAIT_S)
        served.encoder.open()
        assert held.result(timeout=WAIT_S).applied.top_k == 10
        requests.put(None)  # ends the request iterator's thread
        stored = served.index.GetDocument(ipb.GetDocumentRequest(id="c"), timeout=WAIT_S)
        with pytest.raises(grpc.RpcError) as absent:
            served.index.GetDocument(ipb.GetDocumentRequest(id="d"), timeout=WAIT_S)
    assert stored.document.id == "c"  # committed before the refusal: kept
    assert absent.value.code() is grpc.StatusCode.NOT_FOUND  # refused: not applied
    error = refused.value
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "server at capacity" in error.details()
    assert "first 1 message(s) of this stream were applied" in error.details()
    assert retry_delay_of(error) == Duration(nanos=100_000_000)


def test_a_refused_stream_carries_its_response_so_far(tmp_path: Path) -> None:
    """The refusal said 'the first 1 message(s) ... were applied' but dropped the document
    that message rejected."""
    with served_full_at_second_message(tmp_path, message("c", "")) as error:
        pass
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    partial = ipb.UpsertDocumentsResponse()
    assert status.details[1].Unpack(partial)
    assert (partial.applied_messages, partial.accepted_count, partial.rejected_count) == (1, 1, 1)
    assert [(r.position, r.id) for r in partial.rejected] == [(1, "")]
    assert partial.generation > 0


@contextmanager
def served_full_at_second_message(
    tmp_path: Path, first: ipb.UpsertDocumentsRequest
) -> Iterator[grpc.RpcError]:
    """The error of a stream whose ``first`` message was applied and whose second found the
    server full."""
    with ingest_server(tmp_path) as served:
        requests: Requests = queue.Queue()
        upsert = served.index.UpsertDocuments.future(iter(requests.get, None), timeout=WAIT_S)
        requests.put(first)
        served.wait_applied(3)
        held = served.hold_the_place()
        requests.put(message("d"))
        with pytest.raises(grpc.RpcError) as refused:
            upsert.result(timeout=WAIT_S)
        served.encoder.open()
        held.result(timeout=WAIT_S)
        requests.put(None)  # ends the request iterator's thread
    yield refused.value


def test_a_stream_opened_while_the_server_is_full_is_refused(tmp_path: Path) -> None:
    with ingest_server(tmp_path) as served:
        held = served.hold_the_place()
        with pytest.raises(grpc.RpcError) as refused:
            served.index.UpsertDocuments(iter([message("c")]), timeout=WAIT_S)
        served.encoder.open()
        held.result(timeout=WAIT_S)
        with pytest.raises(grpc.RpcError) as absent:
            served.index.GetDocument(ipb.GetDocumentRequest(id="c"), timeout=WAIT_S)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "first 0 message(s) of this stream were applied" in refused.value.details()
    assert absent.value.code() is grpc.StatusCode.NOT_FOUND


def retry_delay_of(error: grpc.RpcError) -> Duration:
    """The google.rpc.RetryInfo delay of a failed call's rich status."""
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    return info.retry_delay
