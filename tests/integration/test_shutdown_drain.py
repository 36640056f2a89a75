"""How a real `hybridsearch serve` stops: the shutdown delay (health NOT_SERVING while calls
are still answered), then the graceful stop, during which open SearchStreams and idle
UpsertDocuments streams and health Watches end.

Observed over gRPC from outside the process, as a load balancer or a client would.
"""

from __future__ import annotations

import queue
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.api.shutdown import REPEAT_WINDOW_S
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import TINY_CORPUS, ServerProcess, run_cli, start_server

WAIT_S = 60.0  # the most any step may take on a loaded CI machine
SERVICES = (
    "",
    "hybridsearch.v1.SearchService",
    "hybridsearch.v1.IndexService",
    "hybridsearch.v1.CollectionService",
)
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def sparse_search(text: str) -> pb.SearchRequest:
    return pb.SearchRequest(query=text, mode=pb.RETRIEVAL_MODE_SPARSE)


def started(index: Path, *flags: str) -> ServerProcess:
    server = start_server("--index", str(index), *flags)
    server.wait_serving(timeout=WAIT_S)
    return server


def health_of(address: str, service: str) -> int:
    """One Check over a fresh connection, as a polling probe makes it."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=WAIT_S
        )
        return int(reply.status)


def wait_not_serving(server: ServerProcess) -> None:
    """Watch the server's own health until it turns NOT_SERVING."""
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        updates = stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)  # type: ignore[attr-defined]
        assert any(u.status == NOT_SERVING for u in updates)
        updates.cancel()


def port_refuses(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=WAIT_S).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def server_during_delay(tiny_sparse_index: Path) -> Iterator[ServerProcess]:
    """A server SIGTERMed with a shutdown delay far longer than the test: it is in the delay."""
    server = started(tiny_sparse_index, "--shutdown-delay-s", "600", "--grace-period-s", "5")
    try:
        server.process.send_signal(signal.SIGTERM)
        wait_not_serving(server)
        yield server
    finally:
        server.stop()


def test_during_the_shutdown_delay_probes_see_not_serving_and_calls_are_answered(
    server_during_delay: ServerProcess,
) -> None:
    """The port closed at once on SIGTERM: probes saw "connection refused", never NOT_SERVING."""
    address = server_during_delay.address
    assert [health_of(address, s) for s in SERVICES] == [NOT_SERVING] * len(SERVICES)
    with grpc.insecure_channel(address) as channel:  # a new connection is still accepted
        reply = search_pb2_grpc.SearchServiceStub(channel).Search(
            sparse_search("boundary layer"), timeout=WAIT_S
        )
    assert reply.hits
    assert server_during_delay.process.poll() is None


def test_a_second_signal_ends_the_delay_then_the_port_closes(
    server_during_delay: ServerProcess,
) -> None:
    time.sleep(REPEAT_WINDOW_S)  # sooner, it would be taken for the first signal again
    server_during_delay.process.send_signal(signal.SIGINT)
    assert server_during_delay.process.wait(timeout=WAIT_S) == 0  # not the 600 s delay
    assert port_refuses(server_during_delay.address)
    log = server_during_delay.stderr_tail(lines=50)
    assert "shutdown delay: NOT_SERVING, still answering calls for 600.0 s" in log
    assert "SIGINT: ending the shutdown delay early, stopping now" in log


def test_the_delay_ends_by_itself_then_the_stop_is_graceful(tiny_sparse_index: Path) -> None:
    server = started(tiny_sparse_index, "--shutdown-delay-s", "0.5")
    try:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=WAIT_S) == 0
        log = server.stderr_tail(lines=50)
        assert log.index("shutdown delay") < log.index("shutting down (grace 10.0 s)")
        assert port_refuses(server.address)
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["-1", "nan", "86401"])
def test_a_bad_shutdown_delay_stops_serve_naming_it(tiny_sparse_index: Path, value: str) -> None:
    with pytest.raises(RuntimeError) as failed:
        start_server("--index", str(tiny_sparse_index), "--shutdown-delay-s", value)
    assert "exit code 2" in str(failed.value)
    assert "--shutdown-delay-s (env HYBRIDSEARCH_SHUTDOWN_DELAY_S): must be" in str(failed.value)


def test_an_open_search_stream_ends_unavailable_when_the_stop_begins(
    tiny_sparse_index: Path,
) -> None:
    """The stream kept taking requests through the grace period and was cut at its end."""
    server = started(tiny_sparse_index, "--grace-period-s", "300")
    try:
        requests: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()
        with grpc.insecure_channel(server.address) as channel:
            responses = search_pb2_grpc.SearchServiceStub(channel).SearchStream(
                iter(requests.get, None), timeout=WAIT_S
            )
            requests.put(pb.SearchStreamRequest(request_id="before", search=sparse_search("heat")))
            assert next(responses).request_id == "before"
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(grpc.RpcError) as ended:
                next(responses)
            requests.put(None)
        assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "the server is shutting down" in str(ended.value.details())
        assert server.process.wait(timeout=WAIT_S) == 0  # not held for the 300 s grace period
    finally:
        server.stop()


def test_an_idle_upsert_stream_ends_unavailable_when_the_stop_begins(tmp_path: Path) -> None:
    """An idle ingest stream held the stop until the grace period ended."""
    index = tmp_path / "writable"
    run_cli(
        "index", "--corpus", str(TINY_CORPUS), "--out", str(index), "--no-dense", "--no-progress"
    )
    server = started(index, "--grace-period-s", "300")
    try:
        requests: queue.Queue[ipb.UpsertDocumentsRequest | None] = queue.Queue()
        with grpc.insecure_channel(server.address) as channel:
            upsert = index_pb2_grpc.IndexServiceStub(channel).UpsertDocuments.future(
                iter(requests.get, None), timeout=WAIT_S
            )
            owl = ipb.Document(id="owl", text="a snowy owl")
            requests.put(ipb.UpsertDocumentsRequest(documents=[owl]))
            search = search_pb2_grpc.SearchServiceStub(channel)
            while "owl" not in [h.id for h in search.Search(sparse_search("snowy owl")).hits]:
                time.sleep(0.02)  # the message is applied: the stream is idle
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(grpc.RpcError) as ended:
                upsert.result(timeout=WAIT_S)
            requests.put(None)
        assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "the server is shutting down" in str(ended.value.details())
        assert "the first 1 message(s) of this stream were applied" in str(ended.value.details())
        assert server.process.wait(timeout=WAIT_S) == 0  # not held for the 300 s grace period
    finally:
        server.stop()


def watch_own_health(channel: grpc.Channel) -> Iterator[health_pb2.HealthCheckResponse]:
    """An open Watch of the server's own health, as grpc's client-side health checking holds
    it (no deadline of its own: only the test's)."""
    stub = health_pb2_grpc.HealthStub(channel)
    updates: Iterator[health_pb2.HealthCheckResponse]
    updates = stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)  # type: ignore[attr-defined]
    return updates


def statuses_until_the_end(
    updates: Iterator[health_pb2.HealthCheckResponse],
) -> tuple[list[int], grpc.RpcError]:
    """Every status a Watch sends until it ends, and how it ended."""
    seen: list[int] = []
    with pytest.raises(grpc.RpcError) as ended:
        for update in updates:
            seen.append(int(update.status))
    return seen, ended.value


def test_an_open_health_watch_sees_not_serving_then_ends_when_the_stop_begins(
    tiny_sparse_index: Path,
) -> None:
    """An open Watch got NOT_SERVING but stayed open: it held the stop for the grace period."""
    server = started(tiny_sparse_index, "--grace-period-s", "300")
    try:
        with grpc.insecure_channel(server.address) as channel:
            updates = watch_own_health(channel)
            assert next(updates).status == health_pb2.HealthCheckResponse.SERVING
            server.process.send_signal(signal.SIGTERM)
            seen, ended = statuses_until_the_end(updates)
        assert seen == [NOT_SERVING]
        assert ended.code() is grpc.StatusCode.UNAVAILABLE
        assert "the server is shutting down" in str(ended.details())
        assert server.process.wait(timeout=WAIT_S) == 0  # not held for the 300 s grace period
    finally:
        server.stop()


def test_a_health_watch_streams_through_the_shutdown_delay_and_ends_at_the_stop(
    tiny_sparse_index: Path,
) -> None:
    """Load balancers watch health during the delay: the Watch stays open then (calls are
    still answered), and only the graceful stop ends it."""
    server = started(tiny_sparse_index, "--shutdown-delay-s", "600", "--grace-period-s", "300")
    try:
        with grpc.insecure_channel(server.address) as channel:
            updates = watch_own_health(channel)
            assert next(updates).status == health_pb2.HealthCheckResponse.SERVING
            server.process.send_signal(signal.SIGTERM)
            assert next(updates).status == NOT_SERVING  # the delay began
            reply = search_pb2_grpc.SearchServiceStub(channel).Search(
                sparse_search("boundary layer"), timeout=WAIT_S
            )
            assert reply.hits  # still answering, and the Watch is still open
            assert updates.is_active()  # type: ignore[attr-defined]
            time.sleep(REPEAT_WINDOW_S)  # sooner, it would be taken for the first signal again
            server.process.send_signal(signal.SIGTERM)  # ends the delay: the stop begins
            seen, ended = statuses_until_the_end(updates)
        assert seen == []  # NOT_SERVING was sent once, at the delay
        assert ended.code() is grpc.StatusCode.UNAVAILABLE
        assert server.process.wait(timeout=WAIT_S) == 0  # not held for the 300 s grace period
    finally:
        server.stop()
