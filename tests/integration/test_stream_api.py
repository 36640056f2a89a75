"""SearchStream on a hybrid index: progressive (BM25 first, then fused) results; a cancelled
stream's queued work is dropped; a stream cancelled mid-write logs no error."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.config import ServerSettings
from hybridsearch.engine.loader import batching_settings
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Document, Query, SearchResult
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import TINY_CORPUS, run_cli, start_server
from tests.fakes import HashEncoder, build_fake_index
from tests.integration.gated import WAIT_S, GatedEncoder
from tests.integration.in_process import InProcessServer, in_process_server

QUERIES = ["pasta tomato", "laminar boundary layer", "tennis match", "rocket nozzle", "bread"]
PARTIALS = 20  # stream answers read before cancelling (the server runs up to 32 at once)


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


class CountingSearcher(HybridSearcher):
    """The real searcher, counting progressive searches begun and ended (however they end)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.started = self.ended = 0

    def search_progressive(
        self, query: Query, on_partial: Callable[[SearchResult], object]
    ) -> SearchResult:
        with self._lock:
            self.started += 1
        try:
            return super().search_progressive(query, on_partial)
        finally:
            with self._lock:
                self.ended += 1


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[InProcessServer, GatedEncoder]]:
    """A server over the tiny corpus whose query encoder runs one query at a time, when let."""
    index = build_fake_index(tmp_path / "index", list(read_corpus(TINY_CORPUS)))
    encoder = GatedEncoder()

    def factory(settings: ServerSettings) -> HybridSearcher:
        return CountingSearcher(
            open_index(index),
            encoder,
            batching=batching_settings(settings),
            arm_threads=settings.search_threads,
        )

    with in_process_server(ServerSettings(index=index, port=0, max_batch_size=1), factory) as srv:
        try:
            yield srv, encoder
        finally:
            encoder.open()  # a run still held would hold the server's shutdown


def test_cancelling_a_stream_drops_its_queued_work(
    gated: tuple[InProcessServer, GatedEncoder],
) -> None:
    server, encoder = gated
    engine = server.engine
    assert isinstance(engine, CountingSearcher)

    def endless() -> Iterator[pb.SearchStreamRequest]:
        for i in itertools.count():
            search = pb.SearchRequest(query=f"{QUERIES[i % len(QUERIES)]} {i}", top_k=5)
            yield pb.SearchStreamRequest(request_id=f"e{i}", search=search, progressive=True)

    with grpc.insecure_channel(server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        call = stub.SearchStream(endless())
        # The encoder holds the first query: only BM25 partials come back, the rest queue.
        answers = [answer for _, answer in zip(range(PARTIALS), call, strict=False)]
        assert [a.partial for a in answers] == [True] * PARTIALS
        (held,) = encoder.next_run()
        call.cancel()
        with pytest.raises(grpc.RpcError) as info:
            next(call)
        assert info.value.code() == grpc.StatusCode.CANCELLED

        # Every search of the stream ends while the encoder is still held, except the one
        # it is encoding: their queued encodings were dropped, not waited for.
        wait_until(lambda: engine.ended == engine.started - 1, "the cancelled searches end")
        started = engine.started
        assert started >= PARTIALS
        encoder.open()
        # The batcher is first-in first-out: a query sent now is encoded after anything
        # still queued, so once it is answered the encoder has seen all it ever will.
        dense = pb.SearchRequest(query="marker", mode=pb.RETRIEVAL_MODE_DENSE, top_k=1)
        marker = stub.Search(dense, timeout=WAIT_S)
        assert marker.hits
        assert encoder.encoded == [held, "marker"]
        stats = engine.batch_stats()
        assert stats is not None
        assert stats.cancelled == started - 1
        wait_until(lambda: engine.ended == started, "the held search ends")
        assert engine.started == started  # nothing of the stream started after the cancel

        # The server stopped reading the endless stream: it stays healthy and answers at once.
        health = health_pb2_grpc.HealthStub(channel)
        check = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        for query in QUERIES:
            response = stub.Search(pb.SearchRequest(query=query, top_k=3), timeout=5)
            assert response.hits


class CountingPlainSearcher(HybridSearcher):
    """The real searcher, counting the searches it has run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.searched = 0

    def search(self, query: Query) -> SearchResult:
        result = super().search(query)
        with self._lock:
            self.searched += 1
        return result


def test_a_stream_whose_client_does_not_read_holds_only_its_slots_of_answers(
    tmp_path: Path,
) -> None:
    # Answers of ~100 KB each (40 hits with 2,500-character texts): the client's HTTP/2
    # window holds very few of them. The server used to free a request's slot as soon as its
    # answer was queued, so it went on reading and answering, holding every answer in memory.
    docs = [
        Document(id=f"d{i}", title=f"doc {i}", text=" ".join(["pasta tomato sauce"] * 140))
        for i in range(40)
    ]
    index = build_fake_index(tmp_path / "index", docs)
    slots = 4

    def factory(settings: ServerSettings) -> HybridSearcher:
        return CountingPlainSearcher(
            open_index(index), HashEncoder(), batching=batching_settings(settings)
        )

    settings = ServerSettings(index=index, port=0, stream_max_in_flight=slots)
    sent = 800
    with in_process_server(settings, factory) as server:
        engine = server.engine
        assert isinstance(engine, CountingPlainSearcher)
        search = pb.SearchRequest(
            query="pasta",
            top_k=40,
            mode=pb.RETRIEVAL_MODE_SPARSE,
            return_fields=[pb.STORED_FIELD_TEXT],
        )
        requests = (pb.SearchStreamRequest(request_id=f"r{i}", search=search) for i in range(sent))
        with grpc.insecure_channel(server.address) as channel:
            call = search_pb2_grpc.SearchServiceStub(channel).SearchStream(requests)
            try:
                # Searching all of them takes a second or two here: wait until the count has
                # stood still for a while.
                last, still_since = -1, time.monotonic()
                deadline = time.monotonic() + WAIT_S
                while time.monotonic() - still_since < 2.0 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    if engine.searched != last:
                        last, still_since = engine.searched, time.monotonic()
                held = engine.searched
                assert 0 < held < 200, f"{held} of {sent} searched for a client that reads none"
                # Reading resumes the stream: every request is answered, once.
                answered = [answer.request_id for answer in call]
                assert sorted(answered) == sorted(f"r{i}" for i in range(sent))
            finally:
                call.cancel()


CANCELLED_STREAMS = 12


def _big_documents_index(out: Path) -> Path:
    """An index of 10 documents of 24 KB that all match "flow": an answer is 240 KB."""
    corpus = out / "big.jsonl"
    words = " ".join(f"flow{i % 97} flow" for i in range(2000))
    lines = (json.dumps({"_id": str(i), "title": f"doc {i}", "text": words}) for i in range(10))
    corpus.write_text("\n".join(lines) + "\n")
    index = out / "big-index"
    run_cli("index", "--corpus", str(corpus), "--out", str(index), "--no-dense", "--no-progress")
    return index


def test_a_stream_its_client_cancels_mid_write_logs_no_error(tmp_path: Path) -> None:
    """A client that cancels while the server writes its answers is no server fault: the
    access log says CANCELLED, and nothing is logged as an ERROR. (grpc raced its own
    cancellation against the refused write and, when the write came first, logged
    ``ExecuteBatchError raised in core by servicer method`` with a traceback.)"""
    log = tmp_path / "server.log"
    server = start_server("--index", str(_big_documents_index(tmp_path)), log_path=log)
    try:
        server.wait_serving()
        search = pb.SearchRequest(
            query="flow", mode=pb.RETRIEVAL_MODE_SPARSE, top_k=10,
            return_fields=[pb.STORED_FIELD_TITLE, pb.STORED_FIELD_TEXT],
        )  # fmt: skip
        requests = [pb.SearchStreamRequest(request_id=str(i), search=search) for i in range(20)]
        # A fixed 64 KiB receive window: the answers the client does not read fill it, and
        # the server's next write waits for room until the cancel (it waited for none once
        # grpc had grown the window, and the race was then rarely run).
        window = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65535)]
        with grpc.insecure_channel(server.address, options=window) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            for _ in range(CANCELLED_STREAMS):
                call = stub.SearchStream(iter(requests))
                next(call)  # answers are being written; the client reads no more of them
                time.sleep(0.2)  # lets them fill the window (no assertion rests on it)
                call.cancel()
            assert stub.Search(search, timeout=20).hits  # the server is unharmed
    finally:
        assert server.stop() == 0
    lines = log.read_text().splitlines()
    streams = [line for line in lines if "SearchService/SearchStream " in line]
    assert len(streams) == CANCELLED_STREAMS
    assert all(" CANCELLED " in line for line in streams)
    assert not [line for line in lines if "ERROR" in line or "Traceback" in line]
