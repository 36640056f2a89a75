"""UpsertDocuments streams at the graceful stop, and what a stream that fails mid-way tells
its client: its response so far, in the status details.

A real in-process server over a writable index whose document encoder the test holds, so the
stop begins while a message is being applied, without sleeping.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import status_pb2
from numpy.typing import NDArray

from hybridsearch.config import ServerSettings
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.loader import LoadedIndex, compaction_policy
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc
from tests.fakes import HashEncoder, build_fake_index
from tests.integration.gated import WAIT_S
from tests.integration.in_process import InProcessServer

Requests = queue.Queue[ipb.UpsertDocumentsRequest | None]
PROBE_S = 2.0  # a served GetIndexStats answers in milliseconds


class HeldDocumentEncoder(HashEncoder):
    """Hash vectors; a document run signals `started` and waits for `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self._released = threading.Event()

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> NDArray[np.float32]:
        self.started.set()
        if not self._released.wait(timeout=WAIT_S):
            raise RuntimeError("the test never released the encoder")
        return super().encode_documents(texts, batch_size)

    def release(self) -> None:
        self._released.set()


@dataclass
class Served:
    server: InProcessServer
    encoder: HeldDocumentEncoder
    index: index_pb2_grpc.IndexServiceStub
    stopping: list[threading.Thread]  # the thread running the stop, once begun

    def stop_while_applying(self) -> None:
        """Begin the graceful stop while a message is held in the encoder; return once the
        stop has begun (new calls are refused), then let the message finish."""
        assert self.encoder.started.wait(timeout=WAIT_S)
        stopping = threading.Thread(target=self.server.stop)
        self.stopping.append(stopping)
        stopping.start()
        deadline = time.monotonic() + WAIT_S
        while not self._refuses_calls():
            assert time.monotonic() < deadline, "the stop never began"
            time.sleep(0.02)
        self.encoder.release()

    def _refuses_calls(self) -> bool:
        try:
            self.index.GetIndexStats(ipb.GetIndexStatsRequest(), timeout=PROBE_S)
        except grpc.RpcError as exc:
            # A call that reaches a server shutting down is refused with UNAVAILABLE, or, when
            # it races the shutdown, CANCELLED, or left unanswered until the stop ends (about
            # one run in ten here): each says new calls are no longer served.
            refused = (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            assert exc.code() in refused  # type: ignore[attr-defined]
            return True
        return False


@contextmanager
def served(tmp_path: Path) -> Iterator[Served]:
    index = build_fake_index(tmp_path / "index", [Document("a", "", "a cat sat on the mat")])
    encoder = HeldDocumentEncoder()

    def load(current: ServerSettings) -> LoadedIndex:
        writer = IndexWriter(current.index)
        searcher = HybridSearcher(writer.committed(), encoder)
        return LoadedIndex(searcher, Ingestor(writer, searcher, compaction_policy(current)))

    settings = ServerSettings(index=index, port=0, grace_period_s=WAIT_S)
    server = InProcessServer(settings, load)
    stopping: list[threading.Thread] = []
    try:
        with grpc.insecure_channel(server.address) as channel:
            yield Served(server, encoder, index_pb2_grpc.IndexServiceStub(channel), stopping)
    finally:
        encoder.release()
        if stopping:
            stopping[0].join(timeout=WAIT_S)
        else:
            server.stop()


def message(*ids: str) -> ipb.UpsertDocumentsRequest:
    return ipb.UpsertDocumentsRequest(
        documents=[ipb.Document(id=i, text=f"document {i} about owls") for i in ids]
    )


def partial_response_of(error: grpc.RpcError) -> ipb.UpsertDocumentsResponse:
    """The UpsertDocumentsResponse packed into a failed call's rich status."""
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    found = [d for d in status.details if d.Is(ipb.UpsertDocumentsResponse.DESCRIPTOR)]
    assert len(found) == 1, [d.type_url for d in status.details]
    response = ipb.UpsertDocumentsResponse()
    found[0].Unpack(response)
    return response


def test_a_stream_closed_during_its_last_message_is_answered_at_the_stop(
    tmp_path: Path,
) -> None:
    """The client had sent everything and closed its side; the stop began while the server
    applied the last message. It got UNAVAILABLE and lost its response."""
    with served(tmp_path) as serving:
        upsert = serving.index.UpsertDocuments.future(iter([message("b", "")]), timeout=WAIT_S)
        serving.stop_while_applying()
        response = upsert.result(timeout=WAIT_S)
    assert (response.accepted_count, response.applied_messages) == (1, 1)
    assert [(r.position, r.id) for r in response.rejected] == [(1, "")]
    assert response.generation > 0


def test_a_stream_open_at_the_stop_fails_with_its_response_so_far(tmp_path: Path) -> None:
    """The UNAVAILABLE error said 'the first 1 message(s) ... were applied' but dropped the
    documents that message rejected (and its generation)."""
    invalid = [str(n) * 600 for n in range(1, 500)]  # ids over 512 bytes: 499 rejections
    with served(tmp_path) as serving:
        requests: Requests = queue.Queue()
        upsert = serving.index.UpsertDocuments.future(iter(requests.get, None), timeout=WAIT_S)
        requests.put(message("b", *invalid))
        serving.stop_while_applying()
        with pytest.raises(grpc.RpcError) as ended:
            upsert.result(timeout=WAIT_S)
        requests.put(None)
    error = ended.value
    assert error.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "the first 1 message(s) of this stream were applied" in error.details()  # type: ignore[attr-defined]
    partial = partial_response_of(error)
    assert (partial.applied_messages, partial.accepted_count) == (1, 1)
    assert partial.generation > 0
    assert partial.rejected_count == len(invalid)
    # The trailer is bounded: the first rejections only, in stream order.
    assert 0 < len(partial.rejected) < len(invalid)
    assert [r.position for r in partial.rejected] == list(range(1, len(partial.rejected) + 1))
