"""The query micro-batcher through the real server: each caller gets its own hits out of a
shared encoder run, a full encoder queue answers RESOURCE_EXHAUSTED and loses nothing it took,
a cancelled waiting call is never encoded and frees its place.

The server is an in-process `SearchServer` with the real engine (micro-batcher, dense arm,
fusion) over a small index, whose query encoder runs only when the test lets it and reports
what each run encodes (`tests.integration.gated`). No timing is asserted; the tests wait on
the server's own signals (encoder runs, metrics).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.engine.loader import batching_settings
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Document
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.fakes import build_fake_index
from tests.integration.gated import WAIT_S, GatedEncoder
from tests.integration.in_process import InProcessServer, in_process_server

TEXTS = (
    "laminar flow over a flat plate",
    "shock wave boundary layer interaction",
    "heat transfer in hypersonic flight",
    "flutter of thin swept wings",
    "turbulent mixing in jet exhaust",
    "buckling of cylindrical shells",
    "drag of slender bodies at low speed",
    "vortex shedding behind a cylinder",
)
DOCUMENTS = [Document(f"d{i}", "", text) for i, text in enumerate(TEXTS)]
QUEUE = "hybridsearch_encoder_queue"
BATCHES = "hybridsearch_encoder_batches_total"
QUERIES = "hybridsearch_encoder_batched_queries_total"
REFUSED = "hybridsearch_encoder_refused_total"
DROPPED = "hybridsearch_encoder_dropped_total"
RPC_CALLS = "hybridsearch_rpc_calls_total"


@dataclass
class GatedServer:
    server: InProcessServer
    encoder: GatedEncoder
    stub: search_pb2_grpc.SearchServiceStub

    def search(self, text: str) -> grpc.Future:  # type: ignore[type-arg]
        """A dense Search for ``text``, top 1, not waited for."""
        request = pb.SearchRequest(query=text, mode=pb.RETRIEVAL_MODE_DENSE, top_k=1)
        return self.stub.Search.future(request, timeout=WAIT_S)

    def occupy_encoder(self, text: str) -> grpc.Future:  # type: ignore[type-arg]
        """Search ``text`` and wait until the encoder is busy with it (and nothing else)."""
        call = self.search(text)
        assert self.next_run() == [text]
        return call

    def enqueue(self, texts: Sequence[str]) -> list[grpc.Future]:  # type: ignore[type-arg]
        """Search each text, in turn: each is queued for the (busy) encoder before the next
        is sent, so they queue in this order (calls sent at once may reach it in any)."""
        queued = self.metric(QUEUE) or 0
        calls = []
        for text in texts:
            calls.append(self.search(text))
            queued += 1
            self.wait_metric(QUEUE, queued)
        return calls

    def next_run(self) -> list[str]:
        """Block until the encoder starts its next run; the texts it encodes."""
        return self.encoder.next_run()

    def release(self) -> None:
        """Let the encoder's current run finish."""
        self.encoder.release()

    def metric(self, name: str, **labels: str) -> float | None:
        return self.server.metric(name, **labels)

    def wait_metric(self, name: str, value: float, **labels: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while (seen := self.metric(name, **labels)) != value:
            assert time.monotonic() < deadline, f"{name} stayed {seen}, expected {value}"
            time.sleep(0.02)


@contextmanager
def gated_server(tmp_path: Path, **settings: int) -> Iterator[GatedServer]:
    index = build_fake_index(tmp_path / "index", DOCUMENTS)
    encoder = GatedEncoder()

    def factory(current: ServerSettings) -> HybridSearcher:
        return HybridSearcher(
            open_index(index),
            encoder,
            batching=batching_settings(current),
            arm_threads=current.search_threads,
        )

    config = ServerSettings(index=index, port=0, **settings)  # type: ignore[arg-type]
    with in_process_server(config, factory) as server:
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = search_pb2_grpc.SearchServiceStub(channel)
                yield GatedServer(server, encoder, stub)
        finally:
            encoder.open()  # a run still held would hold the server's shutdown


def top_id(future: grpc.Future) -> str:  # type: ignore[type-arg]
    response: pb.SearchResponse = future.result(timeout=WAIT_S)
    return response.hits[0].id


def test_each_caller_gets_its_own_hits_out_of_one_shared_run(tmp_path: Path) -> None:
    with gated_server(tmp_path, max_batch_size=8, encode_queue=8) as server:
        first = server.occupy_encoder(TEXTS[0])
        waiting = server.enqueue(TEXTS[1:5])  # four callers queue while the encoder is busy
        server.release()
        assert sorted(server.next_run()) == sorted(TEXTS[1:5])  # ... and share one run
        server.release()
        assert top_id(first) == "d0"
        assert [top_id(call) for call in waiting] == ["d1", "d2", "d3", "d4"]
        assert (server.metric(BATCHES), server.metric(QUERIES)) == (2, 5)


def test_a_full_encoder_queue_refuses_at_once_and_loses_nothing_it_took(tmp_path: Path) -> None:
    with gated_server(tmp_path, max_batch_size=1, encode_queue=2) as server:
        running = server.occupy_encoder(TEXTS[0])
        queued = server.enqueue(TEXTS[1:3])

        with pytest.raises(grpc.RpcError) as refused:
            server.search(TEXTS[3]).result(timeout=WAIT_S)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "queue full" in (refused.value.details() or "")
        assert "retry" in (refused.value.details() or "")
        # A sparse query needs no encoder and is still served.
        sparse = server.stub.Search(
            pb.SearchRequest(query="flutter wings", mode=pb.RETRIEVAL_MODE_SPARSE),
            timeout=WAIT_S,
        )
        assert sparse.hits[0].id == "d3"

        for text in TEXTS[1:3]:
            server.release()
            assert server.next_run() == [text]
        server.release()
        assert [top_id(running), *map(top_id, queued)] == ["d0", "d1", "d2"]

        again = server.occupy_encoder(TEXTS[3])  # room again once the queue drained
        server.release()
        assert top_id(again) == "d3"
        assert server.metric(REFUSED) == 1


def test_a_cancelled_waiting_call_is_never_encoded_and_frees_its_place(tmp_path: Path) -> None:
    with gated_server(tmp_path, max_batch_size=1, encode_queue=1) as server:
        running = server.occupy_encoder(TEXTS[0])
        (gone,) = server.enqueue(TEXTS[1:2])
        assert gone.cancel()
        # the server has seen the cancellation
        server.wait_metric(RPC_CALLS, 1, code="CANCELLED", method="SearchService/Search")

        # The queue holds one and the cancelled call held it: the next call is taken.
        taken = server.search(TEXTS[2])
        server.wait_metric(DROPPED, 1)
        server.release()
        assert server.next_run() == [TEXTS[2]]  # never TEXTS[1]
        server.release()
        assert (top_id(running), top_id(taken)) == ("d0", "d2")
        assert (server.metric(BATCHES), server.metric(REFUSED)) == (2, 0)
