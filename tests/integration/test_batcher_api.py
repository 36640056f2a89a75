"""The query micro-batcher through the real server: each caller gets its own hits out of a
shared encoder run, a full encoder queue answers RESOURCE_EXHAUSTED and loses nothing it took,
a cancelled waiting call is never encoded and frees its place.

The server is `gated_encoder_server`: the real engine over a small index whose query encoder
runs only when the test lets it, and says on stdout what each run encodes. No timing is
asserted; the tests wait on the server's own signals (stdout, metrics).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import pytest

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import REPO, free_port, wait_serving
from tests.integration.gated_encoder_server import TEXTS

WAIT_S = 120.0  # the most any signal may take on a loaded CI machine
QUEUE = "hybridsearch_encoder_queue"
BATCHES = "hybridsearch_encoder_batches_total"
QUERIES = "hybridsearch_encoder_batched_queries_total"
REFUSED = "hybridsearch_encoder_refused_total"
DROPPED = "hybridsearch_encoder_dropped_total"
CANCELLED = 'hybridsearch_rpc_calls_total{code="CANCELLED",method="SearchService/Search"}'


@dataclass
class GatedServer:
    process: subprocess.Popen[str]
    metrics_url: str
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
        """Search each text and wait until all of them wait for the (busy) encoder."""
        calls = [self.search(t) for t in texts]
        self.wait_metric(QUEUE, len(calls))
        return calls

    def next_run(self) -> list[str]:
        """Block until the encoder starts its next run; the texts it encodes."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line.startswith("encoding "), line
        return line.removeprefix("encoding ").split("|")

    def release(self) -> None:
        """Let the encoder's current run finish."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.metrics_url, timeout=30) as reply:
            text = reply.read().decode()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("hybridsearch_")
        }

    def wait_metric(self, name: str, value: float) -> None:
        deadline = time.monotonic() + WAIT_S
        while (seen := self.metrics().get(name)) != value:
            assert time.monotonic() < deadline, f"{name} stayed {seen}, expected {value}"
            time.sleep(0.02)


@contextmanager
def gated_server(*flags: str) -> Iterator[GatedServer]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.gated_encoder_server", "--port", "0",
         "--metrics-port", str(port), *flags],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    line = process.stdout.readline().strip()
    try:
        assert line.startswith("listening on "), line
        address = line.removeprefix("listening on ")
        wait_serving(address, timeout=WAIT_S)
        with grpc.insecure_channel(address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            yield GatedServer(process, f"http://127.0.0.1:{port}/metrics", stub)
    finally:
        process.stdin.close()  # an encoder still waiting gets EOF and fails its run
        process.terminate()
        process.wait(timeout=60)
        process.stdout.close()


def top_id(future: grpc.Future) -> str:  # type: ignore[type-arg]
    response: pb.SearchResponse = future.result(timeout=WAIT_S)
    return response.hits[0].id


def test_each_caller_gets_its_own_hits_out_of_one_shared_run() -> None:
    with gated_server("--max-batch-size", "8", "--encode-queue", "8") as server:
        first = server.occupy_encoder(TEXTS[0])
        waiting = server.enqueue(TEXTS[1:5])  # four callers queue while the encoder is busy
        server.release()
        assert sorted(server.next_run()) == sorted(TEXTS[1:5])  # ... and share one run
        server.release()
        assert top_id(first) == "d0"
        assert [top_id(call) for call in waiting] == ["d1", "d2", "d3", "d4"]
        seen = server.metrics()
        assert (seen[BATCHES], seen[QUERIES]) == (2, 5)


def test_a_full_encoder_queue_refuses_at_once_and_loses_nothing_it_took() -> None:
    with gated_server("--max-batch-size", "1", "--encode-queue", "2") as server:
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
        assert server.metrics()[REFUSED] == 1


def test_a_cancelled_waiting_call_is_never_encoded_and_frees_its_place() -> None:
    with gated_server("--max-batch-size", "1", "--encode-queue", "1") as server:
        running = server.occupy_encoder(TEXTS[0])
        (gone,) = server.enqueue(TEXTS[1:2])
        assert gone.cancel()
        server.wait_metric(CANCELLED, 1)  # the server has seen the cancellation

        # The queue holds one and the cancelled call held it: the next call is taken.
        taken = server.search(TEXTS[2])
        server.wait_metric(DROPPED, 1)
        server.release()
        assert server.next_run() == [TEXTS[2]]  # never TEXTS[1]
        server.release()
        assert (top_id(running), top_id(taken)) == ("d0", "d2")
        seen = server.metrics()
        assert (seen[BATCHES], seen[REFUSED]) == (2, 0)
