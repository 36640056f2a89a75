"""`serve --workers 2` stopped by a signal to its whole process group, as a terminal's Ctrl-C,
systemd's KillMode=control-group or ``kill -TERM -PGID`` send it.

Such a signal reaches each worker twice: directly, and forwarded by the parent
(`cli.workers`). The repeat must not cut ``--shutdown-delay-s`` short (`api.shutdown`); a
group signal sent later does end the delay. Real processes, real group delivery.

The kernel does not queue a second SIGTERM while the first is still pending: when the parent
forwards before a worker has taken the direct copy, that worker gets the signal once and
there is no repeat to ignore. Which comes first is up to the scheduler (seen both ways on
one machine), so the test of the repeat sends the group's two copies itself, in the order
in which both reach the worker: to each worker, then, once each has taken it, to the parent,
which forwards it. The test of a later signal sends real group signals (``killpg``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.api.shutdown import REPEAT_WINDOW_S
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import ServerProcess, start_server

WAIT_S = 60.0  # the most any step may take on a loaded CI machine
WORKERS = 2
GRACE_S = 5.0
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
IGNORED = "SIGTERM: the first signal again (a process group's), ignored"
ENDED_EARLY = "SIGTERM: ending the shutdown delay early, stopping now"
# One fresh connection each: the kernel spreads new connections over the workers.
CONNECTIONS = 4


@contextlib.contextmanager
def group_server(index: Path, delay_s: float) -> Iterator[ServerProcess]:
    """``serve --workers 2`` leading a process group of its own (its pid is the group id),
    every worker SERVING."""
    server = start_server(
        "--index", str(index), "--workers", str(WORKERS),
        "--shutdown-delay-s", str(delay_s), "--grace-period-s", str(GRACE_S),
        new_session=True,
    )  # fmt: skip
    try:
        wait_every_worker_serving(server)
        yield server
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):  # a worker the test left behind
            os.killpg(server.process.pid, signal.SIGKILL)


def wait_every_worker_serving(server: ServerProcess) -> None:
    """Each worker logs ``serving`` once its index is loaded (a health call over a new
    connection may reach either worker, so it cannot tell that both are)."""
    deadline = time.monotonic() + WAIT_S
    while log_of(server).count("]: serving ") < WORKERS:
        assert server.process.poll() is None, log_of(server)
        assert time.monotonic() < deadline, log_of(server)
        time.sleep(0.05)


def log_of(server: ServerProcess) -> str:
    return server.stderr_tail(lines=200)


def health_and_search_over_new_connections(address: str) -> tuple[set[int], list[list[str]]]:
    """The health statuses and the hits of a Search over ``CONNECTIONS`` new connections."""
    statuses: set[int] = set()
    hits: list[list[str]] = []
    request = pb.SearchRequest(
        query="laminar boundary layer", top_k=2, mode=pb.RETRIEVAL_MODE_SPARSE
    )
    for _ in range(CONNECTIONS):
        options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
        with grpc.insecure_channel(address, options=options) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            statuses.add(health.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S).status)
            reply = search_pb2_grpc.SearchServiceStub(channel).Search(request, timeout=WAIT_S)
            hits.append([hit.id for hit in reply.hits])
    return statuses, hits


def wait_signal_taken(pid: int, sig: signal.Signals) -> None:
    """Until process ``pid`` no longer has ``sig`` pending: one of its threads took it."""
    deadline = time.monotonic() + WAIT_S
    while True:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
        pending = next(line for line in status.splitlines() if line.startswith("ShdPnd:"))
        if not int(pending.split()[1], 16) & (1 << (sig - 1)):
            return
        assert time.monotonic() < deadline, f"{pid} never took {sig.name}"
        time.sleep(0.001)


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_repeat_of_a_group_signal_does_not_cut_the_shutdown_delay(
    tiny_sparse_index: Path,
) -> None:
    """Taken for a second signal, the repeat (the parent's forward) would end each worker's
    delay at once: the port would close as if there were no delay."""
    delay_s = 4.0
    with group_server(tiny_sparse_index, delay_s) as server:
        pgid = server.process.pid
        workers = server.pids()[1:]
        signalled = time.monotonic()
        for worker in workers:  # the group signal's direct copies
            os.kill(worker, signal.SIGTERM)
        for worker in workers:
            wait_signal_taken(worker, signal.SIGTERM)
        os.kill(pgid, signal.SIGTERM)  # the parent's copy: it forwards it to each worker
        time.sleep(delay_s / 2)  # half-way through the delay
        statuses, hits = health_and_search_over_new_connections(server.address)
        assert statuses == {NOT_SERVING}
        assert hits == [["d01", "d11"]] * CONNECTIONS  # still answered
        code = server.process.wait(timeout=delay_s + GRACE_S + WAIT_S)
        took = time.monotonic() - signalled
        server.stop()  # reads the rest of the log
        log = log_of(server)
    assert code == 0, log
    assert took > delay_s - 1.5, log  # the delay was waited out (a generous bound)
    assert group_is_gone(pgid)  # the workers exited with the parent
    assert log.count(f"still answering calls for {delay_s:.1f} s") == WORKERS, log
    assert log.count(IGNORED) == WORKERS, log  # each worker got the signal twice
    assert ENDED_EARLY not in log, log


def test_a_later_group_signal_ends_the_shutdown_delay(tiny_sparse_index: Path) -> None:
    delay_s = 60.0
    with group_server(tiny_sparse_index, delay_s) as server:
        pgid = server.process.pid
        signalled = time.monotonic()
        os.killpg(pgid, signal.SIGTERM)
        time.sleep(REPEAT_WINDOW_S + 1.0)  # sooner, it would be taken for the first again
        statuses, hits = health_and_search_over_new_connections(server.address)
        assert statuses == {NOT_SERVING}  # still in the delay
        assert hits == [["d01", "d11"]] * CONNECTIONS
        os.killpg(pgid, signal.SIGTERM)
        code = server.process.wait(timeout=delay_s / 2)  # well before the delay's end
        server.stop()
        log = log_of(server)
    assert code == 0, log
    assert time.monotonic() - signalled < delay_s / 2
    assert group_is_gone(pgid)
    # Each worker got the first signal's repeat (ignored), or the kernel merged it into the
    # first; the second signal's first copy ended the delay.
    assert log.count(IGNORED) <= WORKERS, log
    assert log.count(ENDED_EARLY) == WORKERS, log
