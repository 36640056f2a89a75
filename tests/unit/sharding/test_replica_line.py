"""The direct line between the sharded front and a replica (`sharding.replica_line`), over
real sockets on this machine."""

from __future__ import annotations

import contextlib
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hybridsearch.errors import InvalidArgumentError
from hybridsearch.sharding import replica_line
from hybridsearch.sharding.replica_line import (
    HEADER,
    MAC_BYTES,
    VERSION,
    Address,
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


def _touch(path: str, then: Any) -> Any:
    Path(path).touch()
    return then


class Touch:
    """Loading its pickle creates the file ``path`` and gives ``then`` (an attacker's pickle
    could run anything instead)."""

    def __init__(self, path: Path, then: Any = None) -> None:
        self.path = path
        self.then = then

    def __reduce__(self) -> tuple[Any, ...]:
        return (_touch, (str(self.path), self.then))


def answer(method: str, args: tuple[Any, ...]) -> Any:
    if method == "echo":
        return args
    if method == "marked":  # a reply whose unpickling at the front creates the file args[0]
        return (Touch(args[0], "marked"), args[1])
    if method == "sleep":
        time.sleep(args[0])
        return "slept"
    if method == "bad_filter":
        raise InvalidArgumentError.single("filter", "field 'year' is not declared")
    if method == "unpicklable":
        return threading.Lock()
    raise AttributeError(method)


OPEN_LINES: list[ReplicaLine] = []
OPEN_RELAYS: list[Relay] = []


@pytest.fixture(autouse=True)
def _close_lines() -> Iterator[None]:
    yield
    while OPEN_LINES:
        OPEN_LINES.pop().reset()
    while OPEN_RELAYS:
        OPEN_RELAYS.pop().close()


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
    raw = line._idle.pop().sock
    raw.sendall(HEADER.pack(1 << 40))
    raw.settimeout(5)
    assert closed_by_peer(raw)
    raw.close()


def test_a_reply_late_past_the_timeout_raises_and_drops_its_connection(
    listener: ReplicaListener,
) -> None:
    line = line_to(listener)
    conn = line.send(pickle.dumps(("sleep", (0.5,))), 5.0)
    with pytest.raises(TimeoutError):
        line.receive(conn, 0.05)
    assert conn.sock.fileno() == -1  # closed: its late reply is never read as another call's
    assert line._idle == []
    assert call(line, "echo", "next") == (True, ("next",))


def test_an_idle_connection_the_replica_closed_is_not_sent_on(
    listener: ReplicaListener,
) -> None:
    line = line_to(listener)
    assert call(line, "echo", 1) == (True, (1,))
    (stale,) = line._idle
    stale.sock.sendall(HEADER.pack(1 << 40))  # the replica closes it (as a restart closes all)
    stale.settimeout(5)
    assert closed_by_peer_peeking(stale.sock)
    assert call(line, "echo", 2) == (True, (2,))  # on a new connection, sent once
    assert stale.fileno() == -1 and len(line._idle) == 1 and line._idle[0] is not stale


def closed_by_peer_peeking(conn: socket.socket) -> bool:
    """`closed_by_peer`, leaving what it sees to be read."""
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def stop_listening(served: ReplicaListener) -> None:
    """``served.close()``, and its address refusing connections (its accept thread holds
    the listening socket until a peer wakes it; a process that ends stops at once)."""
    served.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(served.address, timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise AssertionError("the closed listener still accepts")


def test_a_replica_gone_breaks_the_line_and_reset_forgets_it() -> None:
    served = ReplicaListener("127.0.0.1", KEY, answer)
    line = line_to(served)
    assert call(line, "echo", 1) == (True, (1,))
    stop_listening(served)
    for conn in line._idle:  # the replica's process ending closes its end
        conn.sock.shutdown(socket.SHUT_RDWR)
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


# A party without the key between the front and a replica: on the path, or holding an address
# the front dials (a port or a pod IP a dead replica left). It sees every message, and may
# replace any of them.

#: ``tamper(direction, connection, index, message)``: what the relay sends on instead of the
#: ``index``-th message of its ``connection``-th connection going ``direction`` ("up": front
#: to replica, "down": back). The first two each way are the handshake (hello, proof).
Tamper = Callable[[str, int, int, bytes], bytes]


class Relay:
    """Forwards each message between the front and the replica at ``target``, through
    ``tamper``; `seen` holds what it read, per connection and direction."""

    def __init__(self, target: Address, tamper: Tamper | None = None) -> None:
        self._target = target
        self._tamper = tamper
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address: Address = ("127.0.0.1", self._server.getsockname()[1])
        self.seen: list[dict[str, list[bytes]]] = []
        self.ended: list[threading.Event] = []
        OPEN_RELAYS.append(self)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                front, _ = self._server.accept()
            except OSError:
                return
            replica = socket.create_connection(self._target, timeout=5)
            number = len(self.seen)
            self.seen.append({"up": [], "down": []})
            self.ended.append(threading.Event())
            for source, sink, direction in ((front, replica, "up"), (replica, front, "down")):
                threading.Thread(
                    target=self._pump, args=(source, sink, direction, number), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, direction: str, number: int
    ) -> None:
        try:
            while True:
                message = read_message(source)
                seen = self.seen[number][direction]
                seen.append(message)
                if self._tamper is not None:
                    message = self._tamper(direction, number, len(seen) - 1, message)
                send_message(sink, message)
        except OSError:
            pass
        for conn in (source, sink):  # either end leaving ends the other
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        source.close()
        self.ended[number].set()

    def close(self) -> None:
        self._server.close()


def through_relay(
    listener: ReplicaListener, tamper: Tamper | None = None
) -> tuple[Relay, ReplicaLine]:
    """A relay on the path: the front dials the replica at the relay's address, which is
    therefore the replica's address to both (as a host forwarding the replica's port)."""
    relay = Relay(listener.address, tamper)
    listener.address = relay.address
    line = ReplicaLine(KEY)
    line.address = relay.address
    OPEN_LINES.append(line)
    return relay, line


def forged(message: bytes, payload: Any) -> bytes:
    """A frame the relay makes: the MAC it saw (it cannot make one), its own pickle."""
    return message[:MAC_BYTES] + pickle.dumps(payload)


def test_the_relay_of_the_review_runs_no_code_at_either_end(tmp_path: Path) -> None:
    """The review's attack (07_handshake_relay.py): a party without the key where the front
    dials relays the handshake to a live replica at another address, then sends each end a
    pickle of its own. Version 1 gave it a proven connection both ways, and both pickles
    ran."""
    served = ReplicaListener("127.0.0.1", KEY, answer)
    in_replica, in_front = tmp_path / "ran-in-replica", tmp_path / "ran-in-front"
    stolen: dict[str, bytes] = {}

    def attacker(server: socket.socket) -> None:
        front, _ = server.accept()
        replica = socket.create_connection(served.address, timeout=5)
        for conn in (front, replica):
            conn.settimeout(5)
        send_message(replica, read_message(front))  # the front's hello
        send_message(front, read_message(replica))  # the replica's hello
        stolen["proof"] = read_message(replica)  # the replica's proof
        send_message(front, stolen["proof"])
        # The front proves only once the replica's proof holds: here it does not.
        with contextlib.suppress(OSError):
            stolen["front's proof"] = read_message(front)
        # The best it has for the replica: its own proof reflected, then a request.
        send_message(replica, stolen.get("front's proof", stolen["proof"]))
        send_message(replica, forged(stolen["proof"], ("echo", (Touch(in_replica),))))
        stolen["replica's answer"] = b""
        with contextlib.suppress(OSError):
            stolen["replica's answer"] = read_message(replica)
        with contextlib.suppress(OSError):
            send_message(front, forged(stolen["proof"], (True, Touch(in_front, "forged"))))
        front.close()
        replica.close()

    server = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=attacker, args=(server,), daemon=True)
    thread.start()
    line = ReplicaLine(KEY)
    line.address = ("127.0.0.1", server.getsockname()[1])
    OPEN_LINES.append(line)
    try:
        with pytest.raises(LineBrokenError, match="refused the connection"):
            call(line, "echo", "q")
        thread.join(10)
        assert not thread.is_alive()
    finally:
        server.close()
        served.close()
    assert "front's proof" not in stolen  # the front never proved to it
    assert stolen["replica's answer"] == b""  # the replica closed, answering nothing
    assert not in_replica.exists()
    assert not in_front.exists()


def test_a_relay_on_the_path_passes_frames_through_unchanged(listener: ReplicaListener) -> None:
    relay, line = through_relay(listener)
    assert call(line, "echo", "q") == (True, ("q",))
    assert call(line, "echo", "again") == (True, ("again",))
    assert len(relay.seen) == 1
    assert [len(m) for m in relay.seen[0]["up"][:2]] == [1 + 32, MAC_BYTES]
    assert relay.seen[0]["up"][0][0] == VERSION


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_relay_on_the_path_cannot_inject_a_frame(
    listener: ReplicaListener,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    direction: str,
) -> None:
    marker = tmp_path / "ran"

    def inject(way: str, connection: int, index: int, message: bytes) -> bytes:
        if way != direction or index < 2:
            return message
        if way == "up":
            return forged(message, ("echo", (Touch(marker),)))
        return forged(message, (True, Touch(marker, "forged")))

    relay, line = through_relay(listener, inject)
    with caplog.at_level(logging.WARNING), pytest.raises(LineBrokenError):
        call(line, "echo", "q")
    assert relay.ended[0].wait(5)  # the connection is closed
    time.sleep(0.1)
    assert not marker.exists()
    assert line._idle == []
    if direction == "up":
        assert "closed 1 connection(s) on a request whose MAC is wrong" in caplog.text


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_frame_with_one_byte_flipped_is_refused_before_it_is_unpickled(
    listener: ReplicaListener, tmp_path: Path, direction: str
) -> None:
    blob = b"\xaa" * 4096
    marker = tmp_path / "ran"
    flip = threading.Event()

    def flip_a_byte(way: str, connection: int, index: int, message: bytes) -> bytes:
        if way != direction or index < 2 or not flip.is_set():
            return message
        at = message.index(blob) + len(blob) // 2  # the pickle still loads with it flipped
        return message[:at] + bytes((message[at] ^ 0x01,)) + message[at + 1 :]

    _, line = through_relay(listener, flip_a_byte)
    # Unflipped, the frame's pickle creates the file where it is loaded.
    if direction == "up":
        assert call(line, "echo", Touch(marker, "in"), blob) == (True, ("in", blob))
    else:
        assert call(line, "marked", marker, blob) == (True, ("marked", blob))
    assert marker.exists()
    marker.unlink()
    flip.set()
    with pytest.raises(LineBrokenError):
        if direction == "up":
            call(line, "echo", Touch(marker, "in"), blob)
        else:
            call(line, "marked", marker, blob)
    time.sleep(0.1)
    assert not marker.exists()


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_replayed_frame_is_refused(listener: ReplicaListener, direction: str) -> None:
    """The second call's frame replaced with the first's, on the same connection."""

    def replay(way: str, connection: int, index: int, message: bytes) -> bytes:
        if way == direction and index == 3:
            return relay.seen[connection][way][2]
        return message

    relay, line = through_relay(listener, replay)
    assert call(line, "echo", "first") == (True, ("first",))
    with pytest.raises(LineBrokenError):
        call(line, "echo", "second")
    assert line._idle == []


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_frame_of_another_connection_is_refused(
    listener: ReplicaListener, direction: str
) -> None:
    """The first frame of a second connection replaced with the first connection's: the
    same direction and sequence number, another session key."""

    def swap(way: str, connection: int, index: int, message: bytes) -> bytes:
        if way == direction and connection == 1 and index == 2:
            return relay.seen[0][way][2]
        return message

    relay, line = through_relay(listener, swap)
    assert call(line, "echo", "one") == (True, ("one",))
    first = line._idle.pop()  # held aside: the next call makes a second connection
    try:
        with pytest.raises(LineBrokenError):
            call(line, "echo", "one")  # the same request, the same reply
    finally:
        first.close()
    assert len(relay.seen) == 2


def test_a_peer_of_another_version_is_refused(listener: ReplicaListener) -> None:
    with socket.create_connection(listener.address, timeout=5) as raw:
        hello = read_message(raw)
        assert len(hello) == 1 + 32 and hello[0] == VERSION
        send_message(raw, bytes((VERSION - 1,)) + hello[1:])
        assert closed_by_peer(raw)
    assert call(line_to(listener), "echo", "ok") == (True, ("ok",))


def test_refusals_are_logged_at_most_once_per_period_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttled = replica_line._Throttled("refused %d, last %s")
    with caplog.at_level(logging.WARNING):
        for peer in ("a", "b", "c"):
            throttled.note(peer)
        throttled._logged_at -= replica_line.REFUSAL_LOG_EVERY_S
        throttled.note("d")
    assert [r.getMessage() for r in caplog.records] == ["refused 1, last a", "refused 3, last d"]
