"""Admission control, deadlines, cancellation and graceful shutdown, over a slow fake engine.

The server is the real one (`SearchServer`, interceptors, servicer; in-process, or `serve` in a
process of its own for the SIGTERM test) with an engine that takes a fixed time per call and
reports each call that reaches it, so the tests know what is in flight without sleeping (see
slow_server.py).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.config import ServerSettings
from hybridsearch.harness import free_port
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import REPO, start_server, wait_serving
from tests.integration.in_process import in_process_server
from tests.integration.slow_server import SlowEngine

WAIT_S = 60.0  # the most any signal may take on a loaded CI machine


@dataclass
class SlowServerProcess:
    process: subprocess.Popen[str]
    address: str

    def next_started(self) -> str:
        """Block until the engine reports the next call; returns its query text."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line.startswith("started "), line
        return line.removeprefix("started ")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def start_slow_server(delay_s: float, *flags: str) -> SlowServerProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.slow_server", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "SLOW_ENGINE_DELAY_S": str(delay_s)},
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"slow server did not start: {line!r}")
    server = SlowServerProcess(process, line.removeprefix("listening on "))
    wait_serving(server.address, timeout=60)
    return server


@dataclass
class SlowServer:
    address: str
    started: queue.Queue[str]

    def next_started(self) -> str:
        """Block until the engine reports the next call; returns its query text."""
        return self.started.get(timeout=WAIT_S)


@pytest.fixture
def slow_server(request: pytest.FixtureRequest) -> Iterator[SlowServer]:
    """An in-process server over a `SlowEngine`; param: (delay in s, settings overrides)."""
    delay_s, overrides = request.param
    started: queue.Queue[str] = queue.Queue()
    engine = SlowEngine(delay_s, report=started.put)
    settings = ServerSettings(port=0, **overrides)
    with in_process_server(settings, lambda _: engine) as server:  # type: ignore[arg-type,return-value]
        yield SlowServer(server.address, started)


def search(text: str) -> pb.SearchRequest:
    return pb.SearchRequest(query=text, mode=pb.RETRIEVAL_MODE_SPARSE)


def status_code(number: int) -> grpc.StatusCode:
    """The status code of a code number (ErrorStatus.code)."""
    return next(code for code in grpc.StatusCode if code.value[0] == number)


def is_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


CAPACITY = 4


@pytest.mark.parametrize(
    "slow_server",
    [(0.5, {"max_in_flight": CAPACITY, "search_threads": CAPACITY})],
    indirect=True,
)
def test_flood_gets_ok_or_resource_exhausted_and_the_server_survives(
    slow_server: SlowServer,
) -> None:
    flood = 16 * CAPACITY
    with grpc.insecure_channel(slow_server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        calls = [stub.Search.future(search(f"q{i}"), timeout=30) for i in range(flood)]
        stream_requests = [pb.SearchStreamRequest(request_id="s", search=search("s"))]
        streams = [stub.SearchStream(iter(stream_requests), timeout=30) for _ in range(CAPACITY)]
        codes: Counter[grpc.StatusCode] = Counter(call.code() for call in calls)
        for stream in streams:  # a stream's requests are admitted one by one (in-band errors)
            for answer in stream:
                if answer.WhichOneof("result") == "response":
                    codes[grpc.StatusCode.OK] += 1
                else:
                    codes[status_code(answer.error.code)] += 1
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
        assert codes[grpc.StatusCode.OK] >= CAPACITY
        assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= flood // 4, codes
        assert is_serving(slow_server.address)
        assert stub.Search(search("after the flood"), timeout=30).applied.top_k == 10


@pytest.mark.parametrize("slow_server", [(1.0, {"search_threads": 1})], indirect=True)
def test_expired_deadline_is_answered_without_engine_work(slow_server: SlowServer) -> None:
    with grpc.insecure_channel(slow_server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        first = stub.Search.future(search("first"), timeout=30)
        assert slow_server.next_started() == "first"  # the only search thread is now busy
        with pytest.raises(grpc.RpcError) as info:
            stub.Search(search("late"), timeout=0.3)  # queued behind "first"; expires there
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert first.result().applied.top_k == 10
        stub.Search(search("after"), timeout=30)
        # the engine's next call is "after": the expired "late" never reached it
        assert slow_server.next_started() == "after"


@pytest.mark.parametrize(
    "slow_server", [(1.0, {"max_in_flight": 1, "search_threads": 2})], indirect=True
)
def test_cancelled_call_frees_its_place(slow_server: SlowServer) -> None:
    with grpc.insecure_channel(slow_server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        held = stub.Search.future(search("held"), timeout=30)
        assert slow_server.next_started() == "held"
        with pytest.raises(grpc.RpcError) as info:
            stub.Search(search("refused"), timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert held.cancel()
        # The server learns of the cancellation asynchronously; a health round trip between
        # attempts gives it the chance. A place that is never freed fails every attempt.
        for _ in range(20):
            try:
                assert stub.Search(search("admitted"), timeout=30).applied.top_k == 10
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert is_serving(slow_server.address)
        else:
            pytest.fail("the cancelled call never freed its place")
        assert slow_server.next_started() == "admitted"


def retry_delay_of(error: grpc.RpcError) -> Duration | None:
    """The google.rpc.RetryInfo delay in a failed call's rich status (None: there is none)."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info.retry_delay
    return None


def test_an_overload_refusal_advises_a_retry_delay() -> None:
    """RESOURCE_EXHAUSTED said "retry with backoff" but carried no google.rpc.RetryInfo."""
    server = start_slow_server(1.5, "--max-in-flight", "1")
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            held = stub.Search.future(search("held"), timeout=WAIT_S)
            assert server.next_started() == "held"  # the only place is taken
            with pytest.raises(grpc.RpcError) as refused:
                stub.Search(search("refused"), timeout=WAIT_S)
            assert held.result().applied.top_k == 10
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_delay_of(refused.value) == Duration(nanos=100_000_000)
    finally:
        assert server.stop() == 0


def test_an_idle_search_stream_holds_no_place(tiny_sparse_index: Path) -> None:
    """A stream counted as one call for its whole life: idle open streams refused every call."""
    server = start_server("--index", str(tiny_sparse_index), "--max-in-flight", "1")
    try:
        server.wait_serving(timeout=WAIT_S)
        requests: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()
        with grpc.insecure_channel(server.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            responses = stub.SearchStream(iter(requests.get, None), timeout=WAIT_S)
            requests.put(pb.SearchStreamRequest(request_id="1", search=search("heat")))
            assert next(responses).HasField("response")  # the stream is open, and idle
            assert stub.Search(search("boundary layer"), timeout=WAIT_S).hits
            requests.put(pb.SearchStreamRequest(request_id="2", search=search("heat")))
            assert next(responses).HasField("response")
            requests.put(None)
            assert list(responses) == []
    finally:
        assert server.stop() == 0


def test_a_stream_request_past_the_bound_is_refused_alone() -> None:
    metrics_port = free_port()
    server = start_slow_server(1.5, "--max-in-flight", "1", "--metrics-port", str(metrics_port))
    try:
        requests: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()
        with grpc.insecure_channel(server.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            held = stub.Search.future(search("held"), timeout=WAIT_S)
            assert server.next_started() == "held"  # the only place is taken
            responses = stub.SearchStream(iter(requests.get, None), timeout=WAIT_S)
            requests.put(pb.SearchStreamRequest(request_id="refused", search=search("no")))
            refused = next(responses)
            assert held.result().applied.top_k == 10
            requests.put(pb.SearchStreamRequest(request_id="later", search=search("later")))
            assert server.next_started() == "later"
            later = next(responses)
            requests.put(None)
        assert refused.request_id == "refused"
        assert refused.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert "server at capacity" in refused.error.message
        assert later.request_id == "later" and later.HasField("response")
        # The refusal shows in the server's telemetry, though the stream itself ends OK.
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            scraped = reply.read().decode()
        assert "hybridsearch_stream_requests_refused_total 1.0" in scraped
    finally:
        assert server.stop() == 0


def test_sigterm_drains_the_in_flight_call_and_exits_zero() -> None:
    server = start_slow_server(1.5, "--grace-period-s", "20")
    try:
        channel = grpc.insecure_channel(server.address)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        statuses: list[int] = []

        def watch_until_not_serving() -> None:
            for update in watch:
                statuses.append(update.status)
                if update.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    watch.cancel()  # an open Watch would hold the drain until the grace ends
                    return

        watcher = threading.Thread(target=watch_until_not_serving)
        stub = search_pb2_grpc.SearchServiceStub(channel)
        in_flight = stub.Search.future(search("in flight"), timeout=30)
        assert server.next_started() == "in flight"
        server.process.send_signal(signal.SIGTERM)
        watcher.start()
        assert in_flight.result().applied.top_k == 10  # completed, not cut off
        assert server.process.wait(timeout=30) == 0
        watcher.join(timeout=30)
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        channel.close()
    finally:
        server.stop()


def test_sigterm_lets_a_stream_finish_its_request_in_work_then_ends_it_unavailable() -> None:
    """The stream kept taking requests through the grace period and was cut at its end."""
    server = start_slow_server(1.5, "--grace-period-s", "300")
    try:
        requests: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()
        with grpc.insecure_channel(server.address) as channel:
            responses = search_pb2_grpc.SearchServiceStub(channel).SearchStream(
                iter(requests.get, None), timeout=WAIT_S
            )
            requests.put(pb.SearchStreamRequest(request_id="a", search=search("in work")))
            assert server.next_started() == "in work"
            server.process.send_signal(signal.SIGTERM)
            answered = next(responses)
            with pytest.raises(grpc.RpcError) as ended:
                next(responses)
            requests.put(None)
        assert answered.request_id == "a" and answered.HasField("response")
        assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
        assert server.process.wait(timeout=WAIT_S) == 0  # not held for the 300 s grace period
    finally:
        server.stop()


def test_sigterm_during_a_load_that_never_ends_exits_within_the_grace_period() -> None:
    """The stop joined the load's thread with no limit, so the process never exited; a second
    signal now says that the shutdown is under way (it was ignored without a word)."""
    grace_s = 1.0
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.slow_server", "--port", "0",
         "--grace-period-s", str(grace_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "SLOW_ENGINE_LOAD": "forever"},
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith("listening on ")
        assert process.stdout.readline().strip() == "loading"  # signal handlers are set
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=grace_s + 10) == 0  # 10 s: a loaded CI machine
        stderr = process.stderr.read()
        # Linux delivers pending signals lowest number first: either may come second
        assert re.search(r"SIG(INT|TERM): shutdown already under way \(", stderr), stderr
        assert "s of the 1.0 s grace period left)" in stderr
        assert "the index load did not end within the grace period (1.0 s)" in stderr
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
