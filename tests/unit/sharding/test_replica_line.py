"""The direct line between the sharded front and a replica (`sharding.replica_line`), over
real sockets on this machine."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hybridsearch.errors import InvalidArgumentError
from hybridsearch.sharding.replica_line import (
    HEADER,
    LineBrokenError,
    ReplicaLine,
    ReplicaListener,
    new_key,
    read_message,
    send_message,
)

KEY = new_key()
#: Set when a pickle the tests sent was loaded by the replica.
UNPICKLED = threading.Event()


def _mark_unpickled() -> None:
    UNPICKLED.set()


class Payload:
    """Loading its pickle sets `UNPICKLED` (what an attacker's pickle could do instead)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_mark_unpickled, ())


def answer(method: str, args: tuple[Any, ...]) -> Any:
    if method == "echo":
        return args
    if method == "sleep":
        time.sleep(args[0])
        return "slept"
    if method == "bad_filter":
        raise InvalidArgumentError.single("filter", "field 'year' is not declared")
    if method == "unpicklable":
        return threading.Lock()
    raise AttributeError(method)


OPEN_LINES: list[ReplicaLine] = []


@pytest.fixture(autouse=True)
def _close_lines() -> Iterator[None]:
    yield
    while OPEN_LINES:
        OPEN_LINES.pop().reset()


@pytest.fixture
def listener() -> Iterator[ReplicaListener]:
    served = ReplicaListener("127.0.0.1", KEY, answer)
    yield served
    served.close()


def line_to(listener: ReplicaListener, key: bytes = KEY) -> ReplicaLine:
    line = ReplicaLine(key)
    line.address = listener.address
    OPEN_LINES.append(line)
    return line


def call(line: ReplicaLine, method: str, *args: Any, timeout: float = 5.0) -> tuple[bool, Any]:
    conn = line.send(pickle.dumps((method, args)), timeout)
    outcome: tuple[bool, Any] = pickle.loads(line.receive(conn, timeout))
    return outcome


def closed_by_peer(conn: socket.socket) -> bool:
    """True when the peer closed ``conn`` (an orderly end, or a reset: it closed with our
    bytes unread)."""
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_call_returns_the_answer_and_the_connection_is_reused(
    listener: ReplicaListener,
) -> None:
    line = line_to(listener)
    assert call(line, "echo", "q", 3) == (True, ("q", 3))
    first = line._idle[0]
    assert call(line, "echo", "again") == (True, ("again",))
    assert line._idle == [first]


def test_concurrent_calls_each_get_their_own_connection_and_answer(
    listener: ReplicaListener,
) -> None:
    line = line_to(listener)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: call(line, "echo", i), range(64)))
    assert outcomes == [(True, (i,)) for i in range(64)]
    assert 1 <= len(line._idle) <= 8


def test_errors_travel_back_as_themselves(listener: ReplicaListener) -> None:
    line = line_to(listener)
    ok, error = call(line, "bad_filter")
    assert not ok
    assert isinstance(error, InvalidArgumentError)
    assert [v.field for v in error.violations] == ["filter"]
    assert "year" in str(error)
    ok, error = call(line, "unpicklable")
    assert not ok
    assert isinstance(error, RuntimeError)
    assert "cannot be sent" in str(error)
    assert call(line, "echo", 1) == (True, (1,))  # the connection still serves


def test_a_wrong_key_is_refused_and_its_request_never_unpickled(
    listener: ReplicaListener,
) -> None:
    UNPICKLED.clear()
    with pytest.raises(LineBrokenError):
        call(line_to(listener, key=new_key()), "echo", Payload())
    # A peer that skips the challenge: its pickle is read as the answer and refused.
    with socket.create_connection(listener.address, timeout=5) as raw:
        read_message(raw)  # the challenge
        send_message(raw, pickle.dumps(("echo", (Payload(),))))
        raw.settimeout(5)
        assert closed_by_peer(raw)
    time.sleep(0.2)
    assert not UNPICKLED.is_set()
    assert call(line_to(listener), "echo", "ok") == (True, ("ok",))


def test_a_message_over_the_limit_ends_the_connection(listener: ReplicaListener) -> None:
    line = line_to(listener)
    conn = line.send(pickle.dumps(("echo", ())), 5.0)
    line.receive(conn, 5.0)
    conn = line._idle.pop()
    conn.sendall(HEADER.pack(1 << 40))
    conn.settimeout(5)
    assert closed_by_peer(conn)
    conn.close()


def test_a_reply_late_past_the_timeout_raises_and_drops_its_connection(
    listener: ReplicaListener,
) -> None:
    line = line_to(listener)
    conn = line.send(pickle.dumps(("sleep", (0.5,))), 5.0)
    with pytest.raises(TimeoutError):
        line.receive(conn, 0.05)
    assert conn.fileno() == -1  # closed: its late reply is never read as another call's
    assert line._idle == []
    assert call(line, "echo", "next") == (True, ("next",))


def test_a_replica_gone_breaks_the_line_and_reset_forgets_it() -> None:
    served = ReplicaListener("127.0.0.1", KEY, answer)
    line = line_to(served)
    assert call(line, "echo", 1) == (True, (1,))
    served.close()
    for conn in line._idle:  # the replica's process ending closes its end
        conn.shutdown(socket.SHUT_RDWR)
    with pytest.raises(OSError):
        call(line, "echo", 2)
    line.reset()
    assert line.address is None
    with pytest.raises(LineBrokenError, match="address is not known"):
        call(line, "echo", 3)


def silent_peers(listener: ReplicaListener, count: int) -> list[socket.socket]:
    """``count`` connections that read the replica's challenge and never answer it."""
    peers = []
    for _ in range(count):
        raw = socket.create_connection(listener.address, timeout=5)
        read_message(raw)  # the replica started its handshake: a slot is taken
        peers.append(raw)
    return peers


def handshake_threads() -> int:
    return sum(t.name == "replica-call" and t.is_alive() for t in threading.enumerate())


def test_peers_that_never_prove_the_key_hold_at_most_the_handshake_slots() -> None:
    served = ReplicaListener("127.0.0.1", KEY, answer, max_handshakes=4)
    held = line_to(served)
    assert call(held, "echo", "before") == (True, ("before",))  # a proven connection, idle
    threads_before = handshake_threads()
    peers = silent_peers(served, 4)
    try:
        extra = [socket.create_connection(served.address, timeout=5) for _ in range(20)]
        for raw in extra:  # closed at once, long before the 5 s a handshake may take
            raw.settimeout(1.0)
            assert closed_by_peer(raw)
            raw.close()
        assert handshake_threads() - threads_before == 4
        # The front's proven connection is not one of the slots: it still answers.
        assert call(held, "echo", "during") == (True, ("during",))
        with pytest.raises(LineBrokenError):  # a new one waits for a slot like anyone
            call(line_to(served), "echo", "new")
    finally:
        for raw in peers:
            raw.close()
    deadline = time.monotonic() + 5.0
    while True:  # the silent peers left: their slots are free again
        try:
            assert call(line_to(served), "echo", "after") == (True, ("after",))
            break
        except LineBrokenError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    served.close()


def test_a_silent_peer_loses_its_slot_after_the_handshake_timeout() -> None:
    served = ReplicaListener("127.0.0.1", KEY, answer, max_handshakes=2, handshake_timeout_s=0.3)
    peers = silent_peers(served, 2)
    try:
        for raw in peers:  # the replica gives up on each after 0.3 s
            raw.settimeout(3.0)
            assert closed_by_peer(raw)
        assert call(line_to(served), "echo", "in") == (True, ("in",))
    finally:
        for raw in peers:
            raw.close()
        served.close()
