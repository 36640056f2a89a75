"""A direct line from the sharded front to a shard replica: a held TCP connection.

Ray places the replicas, restarts one that dies, and tells the front where each one listens
(`ray_group`); a query's request and reply then travel over a connection the front holds
open to the replica, not as a Ray task. Measured side by side on 2 cores
(bench/ray_hop.py): a Ray actor call costs p50 about 1–2 ms by itself (task submission, the
core workers' gRPC, dispatch onto the actor's thread, the reply through the object store),
the same bytes over a held connection a few hundredths of a millisecond.

The protocol (version 2), over TCP (``TCP_NODELAY``):

- every message is its length (8 bytes, big-endian) and that many bytes;
- a connection starts with a handshake on the group's key (random, made by the front for the
  group and given to its replicas through Ray when it creates them). Each side sends a hello,
  the version byte and 32 fresh random bytes; the replica then proves it holds the key, the
  front checks that proof and only then proves it too. A proof is an HMAC-SHA256 under the
  key of a role tag ("replica" or "front") and the transcript: the version, the replica's
  address (where it listens, which the front dials: Ray tells it), both hellos. So a proof
  is good for one connection, one role and one address: it cannot be reflected to its
  sender, replayed on another connection, or relayed to a replica at another address (a
  port or pod IP a dead replica left, now held by someone else, dialed by a front that has
  not heard yet). Either side closes the connection on a wrong proof or version;
- then requests and replies in turn, each a frame: its HMAC-SHA256 (32 bytes), then the
  payload. The MAC is under the connection's own session key (an HMAC of the key and the
  transcript) and covers the direction, the frame's sequence number in that direction and
  the payload; each side checks it before it does anything with the payload, and closes the
  connection on a wrong one. So a party on the path without the key can pass frames through
  unchanged, or break the connection, but not inject, alter, replay or reorder one. The
  payload of a request is the pickle of ``(method, args)``, of a reply the pickle of
  ``(True, result)`` or ``(False, exception)``: a replica unpickles only frames of a front
  that proved the key, and the front only frames the replica it proved sent.

The frames are authenticated, not encrypted: a party on the path can read queries and
results (keep the replicas' network private, as Ray's own traffic needs to be). The MACs
add about 20–30 µs to a round trip of a typical query (a 1.6 KB request, a 4.3 KB reply:
four HMACs of about 5 µs each, 2 cores; 20 µs before, in one process over loopback).

A replica serves each connection on a thread of its own; the front holds a pool of idle
connections per replica (`ReplicaLine`), one per call in flight, so calls to one replica run
concurrently as they did through Ray. At most `MAX_HANDSHAKES` connections may be proving
the key at once (a peer has `HANDSHAKE_TIMEOUT_S` to do it): one more is closed as soon as it
is accepted, so peers that connect and say nothing cannot make a replica start a thread each
(sshd's ``MaxStartups`` rule). The front's connections already proven are not affected, and
its new ones prove the key in well under a millisecond. Failed handshakes and frames are
logged at most once per `REFUSAL_LOG_EVERY_S`, with how many there were.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

HEADER = struct.Struct("!Q")
#: The protocol's version, the first byte of each side's hello (version 1 had no hello: a
#: challenge of 32 bytes and its HMAC, the same in both directions, and frames without MACs).
VERSION = 2
CHALLENGE_BYTES = 32
HELLO_BYTES = 1 + CHALLENGE_BYTES
MAC_BYTES = hashlib.sha256().digest_size
#: A peer has this long to answer the challenge before the replica drops it.
HANDSHAKE_TIMEOUT_S = 5.0
#: How many connections may be proving the key at once; more are closed when accepted.
MAX_HANDSHAKES = 32
#: A refusal (of a connection, a handshake or a frame) is logged at most once in this many
#: seconds, with how many there were.
REFUSAL_LOG_EVERY_S = 10.0
#: The largest message a replica reads (a request is a query or a batch of documents).
MAX_MESSAGE_BYTES = 1 << 30

#: What each side proves, and the session key's label (HKDF-Expand's ``info``: distinct,
#: each followed by the transcript's fixed-size hash).
_REPLICA_PROOF = b"hybridsearch replica line v2: replica proof"
_FRONT_PROOF = b"hybridsearch replica line v2: front proof"
_SESSION_KEY = b"hybridsearch replica line v2: session key"
#: A frame's direction, MACed with it.
_TO_REPLICA = b"\x01"
_TO_FRONT = b"\x02"

Address = tuple[str, int]


class LineBrokenError(ConnectionError):
    """The connection ended, was refused, the peer failed the handshake or sent a frame whose
    MAC is wrong."""


class _PeerLeftError(LineBrokenError):
    """The peer closed the connection."""


class _ForgedFrameError(LineBrokenError):
    """A frame's MAC is wrong: it was altered, injected, replayed or reordered."""


def new_key() -> bytes:
    """A group's random key."""
    return secrets.token_bytes(32)


def _derive(key: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    """HKDF-Expand (RFC 5869) of ``key``, one block: ``key`` is already uniformly random."""
    return hmac.new(key, label + transcript_hash + b"\x01", hashlib.sha256).digest()


def _transcript_hash(address: Address, replica_hello: bytes, front_hello: bytes) -> bytes:
    """What both sides' proofs and the session key bind: the version, the replica's address
    as the front dials it, both hellos (each of a fixed size)."""
    host = address[0].encode()
    return hashlib.sha256(
        b"".join(
            (
                bytes((VERSION,)),
                struct.pack("!H", len(host)),
                host,
                struct.pack("!H", address[1]),
                replica_hello,
                front_hello,
            )
        )
    ).digest()


class _Throttled:
    """A warning logged at most once per `REFUSAL_LOG_EVERY_S`, with how many times it
    happened since it was last logged (``message`` takes the count first)."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._lock = threading.Lock()
        self._count = 0
        self._logged_at = -REFUSAL_LOG_EVERY_S

    def note(self, *args: object) -> None:
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._logged_at < REFUSAL_LOG_EVERY_S:
                return
            count, self._count, self._logged_at = self._count, 0, now
        log.warning(self._message, count, *args)


_front_refused_replica = _Throttled(
    "the front closed %d new connection(s) to shard replicas that failed the handshake "
    "(no key, the wrong key, or a relay from another address), last %s: %s"
)
_front_refused_frame = _Throttled(
    "the front closed %d connection(s) to shard replicas on a reply whose MAC is wrong "
    "(altered, injected, replayed or reordered on the way), last %s"
)


def _read_exact(conn: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = conn.recv_into(view[got:])
        if count == 0:
            raise _PeerLeftError("the peer closed the connection")
        got += count
    return bytes(buffer)


def read_message(conn: socket.socket, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """One message (`LineBrokenError` when the connection ends or it is over ``limit``)."""
    (size,) = HEADER.unpack(_read_exact(conn, HEADER.size))
    if size > limit:
        raise LineBrokenError(f"a message of {size} bytes is over the limit of {limit}")
    return _read_exact(conn, size)


def send_message(conn: socket.socket, payload: bytes) -> None:
    """One message, in one send (with ``TCP_NODELAY`` a header sent alone would go out as a
    packet of its own)."""
    conn.sendall(HEADER.pack(len(payload)) + payload)


def _hello() -> bytes:
    return bytes((VERSION,)) + secrets.token_bytes(CHALLENGE_BYTES)


def _read_hello(conn: socket.socket) -> bytes:
    hello = read_message(conn, HELLO_BYTES)
    if len(hello) != HELLO_BYTES or hello[0] != VERSION:
        version = hello[0] if len(hello) == HELLO_BYTES else 1
        raise LineBrokenError(f"the peer speaks the line's version {version}, not {VERSION}")
    return hello


def _check_proof(conn: socket.socket, expected: bytes) -> None:
    if not hmac.compare_digest(read_message(conn, MAC_BYTES), expected):
        raise LineBrokenError("the peer's proof is wrong")


class LineConnection:
    """A connection whose handshake is done: frames each way under its session key, each
    with its MAC over (direction, sequence number, payload)."""

    def __init__(self, sock: socket.socket, session_key: bytes, *, front: bool) -> None:
        self.sock = sock
        self._mac = hmac.new(session_key, digestmod=hashlib.sha256)
        self._sending, self._receiving = (
            (_TO_REPLICA, _TO_FRONT) if front else (_TO_FRONT, _TO_REPLICA)
        )
        self._sent = 0
        self._received = 0

    def _tag(self, direction: bytes, number: int, payload: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(direction + number.to_bytes(8, "big"))
        mac.update(payload)
        return mac.digest()

    def send(self, payload: bytes) -> None:
        """One frame (in one send, as `send_message`)."""
        tag = self._tag(self._sending, self._sent, payload)
        self._sent += 1
        self.sock.sendall(HEADER.pack(MAC_BYTES + len(payload)) + tag + payload)

    def receive(self, limit: int = MAX_MESSAGE_BYTES) -> bytes:
        """One frame's payload, once its MAC is checked.

        Raises:
            LineBrokenError: the connection ended or the frame is over ``limit``.
            _ForgedFrameError: its MAC is wrong (the connection is then of no further use).
        """
        (size,) = HEADER.unpack(_read_exact(self.sock, HEADER.size))
        if size < MAC_BYTES or size - MAC_BYTES > limit:
            raise LineBrokenError(f"a frame of {size} bytes is out of bounds (limit {limit})")
        tag = _read_exact(self.sock, MAC_BYTES)
        payload = _read_exact(self.sock, size - MAC_BYTES)
        if not hmac.compare_digest(tag, self._tag(self._receiving, self._received, payload)):
            raise _ForgedFrameError(f"frame {self._received}'s MAC is wrong")
        self._received += 1
        return payload

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def fileno(self) -> int:
        """The socket's descriptor (so that a connection can be polled for its reply)."""
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


def _replica_handshake(conn: socket.socket, key: bytes, address: Address) -> LineConnection:
    """The replica's side: hello, then prove, then check the front's proof."""
    replica_hello = _hello()
    send_message(conn, replica_hello)
    front_hello = _read_hello(conn)
    transcript = _transcript_hash(address, replica_hello, front_hello)
    send_message(conn, _derive(key, _REPLICA_PROOF, transcript))
    _check_proof(conn, _derive(key, _FRONT_PROOF, transcript))
    return LineConnection(conn, _derive(key, _SESSION_KEY, transcript), front=False)


def _front_handshake(conn: socket.socket, key: bytes, address: Address) -> LineConnection:
    """The front's side: hello, check the replica's proof, and only then prove."""
    front_hello = _hello()
    send_message(conn, front_hello)
    replica_hello = _read_hello(conn)
    transcript = _transcript_hash(address, replica_hello, front_hello)
    _check_proof(conn, _derive(key, _REPLICA_PROOF, transcript))
    send_message(conn, _derive(key, _FRONT_PROOF, transcript))
    return LineConnection(conn, _derive(key, _SESSION_KEY, transcript), front=True)


def _nodelay(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ReplicaListener:
    """A replica's end: accepts the front's connections on ``host`` (a port the system
    picks), checks each peer's key, and answers every request with ``answer(method, args)``
    on the connection's own thread."""

    def __init__(
        self,
        host: str,
        key: bytes,
        answer: Callable[[str, tuple[Any, ...]], Any],
        *,
        max_handshakes: int = MAX_HANDSHAKES,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    ):
        self._key = key
        self._answer = answer
        self._handshakes = threading.BoundedSemaphore(max_handshakes)
        self._max_handshakes = max_handshakes
        self._handshake_timeout_s = handshake_timeout_s
        self._refused = _Throttled(
            "a shard replica closed %d new connection(s) unanswered: %d peers were "
            "already proving the key, the most it allows at once"
        )
        self._failed = _Throttled(
            "a shard replica closed %d connection(s) whose peer failed the handshake (no key, "
            "the wrong key, a relay or another version), last from %s: %s"
        )
        self._forged = _Throttled(
            "a shard replica closed %d connection(s) on a request whose MAC is wrong "
            "(altered, injected, replayed or reordered on the way), last from %s"
        )
        self._server = socket.create_server((host, 0), backlog=64)
        #: Where the front dials this replica; the handshake binds it.
        self.address: Address = (host, self._server.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="replica-line", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            if not self._handshakes.acquire(blocking=False):
                conn.close()
                self._refused.note(self._max_handshakes)
                continue
            try:
                threading.Thread(
                    target=self._serve, args=(conn,), name="replica-call", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: refuse this one, keep accepting
                self._handshakes.release()
                conn.close()
                self._refused.note(self._max_handshakes)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                peer = conn.getpeername()
            except OSError:
                return
            try:
                try:
                    _nodelay(conn)
                    conn.settimeout(self._handshake_timeout_s)
                    line = _replica_handshake(conn, self._key, self.address)
                    conn.settimeout(None)
                finally:
                    self._handshakes.release()
            except _PeerLeftError:
                return
            except LineBrokenError as exc:
                self._failed.note(peer, exc)
                return
            except OSError:
                return  # it timed out or reset the connection
            try:
                while True:
                    method, args = pickle.loads(line.receive())
                    line.send(self._reply(method, args))
            except _ForgedFrameError:
                self._forged.note(peer)
            except (OSError, EOFError, ValueError, pickle.UnpicklingError):
                return  # the peer left or broke the protocol

    def _reply(self, method: str, args: tuple[Any, ...]) -> bytes:
        try:
            outcome: tuple[bool, Any] = (True, self._answer(method, args))
        except Exception as exc:  # sent back to the front, which raises it
            outcome = (False, exc)
        try:
            return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a result or an error that cannot travel
            log.exception("a shard replica's reply to %s cannot be pickled", method)
            failure = RuntimeError(f"the replica's reply to {method} cannot be sent: {exc!r}")
            return pickle.dumps((False, failure), protocol=pickle.HIGHEST_PROTOCOL)

    def close(self) -> None:
        """Stop accepting connections (those open end with the process)."""
        self._closed = True
        self._server.close()


def _still_open(conn: socket.socket) -> bool:
    """Whether an idle connection can carry a request: nothing waits to be read on it (an
    end of stream, a reset or a stray byte would be), checked without blocking."""
    try:
        conn.settimeout(0.0)
        conn.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        pass
    return False


class ReplicaLine:
    """The front's connections to one replica: idle ones are reused, a call in flight holds
    one of its own. ``address`` is where the replica listens (None: unknown, e.g. after it
    died; the group asks Ray again)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._lock = threading.Lock()
        self._idle: list[LineConnection] = []
        self.address: Address | None = None

    def send(self, payload: bytes, timeout: float) -> LineConnection:
        """Send a request; the connection it went on, to `receive` the reply from.

        Raises:
            LineBrokenError: no connection could be made or the request not sent.
            TimeoutError: ``timeout`` seconds passed first.
        """
        conn = self._take(timeout)
        try:
            conn.settimeout(timeout)
            conn.send(payload)
        except BaseException:
            conn.close()
            raise
        return conn

    def receive(self, conn: LineConnection, timeout: float) -> bytes:
        """The reply to the request sent on ``conn``; the connection is then idle again.

        Raises:
            LineBrokenError: the connection ended first (the replica died), or the reply's
                MAC is wrong (the connection is closed: the reply is never unpickled).
            TimeoutError: ``timeout`` seconds passed first (the connection is closed: its
                reply would come later).
        """
        try:
            conn.settimeout(timeout)
            reply = conn.receive()
        except _ForgedFrameError as exc:
            conn.close()
            _front_refused_frame.note(self.address)
            raise LineBrokenError(f"the replica's reply was refused: {exc}") from None
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._idle.append(conn)
        return reply

    def _take(self, timeout: float) -> LineConnection:
        with self._lock:
            while self._idle:
                idle = self._idle.pop()
                if _still_open(idle.sock):
                    return idle
                idle.close()  # the replica closed it (it died or restarted): not sent on
            address = self.address
        if address is None:
            raise LineBrokenError("the replica's address is not known")
        try:
            conn = socket.create_connection(address, timeout=timeout)
        except TimeoutError:
            raise
        except OSError as exc:
            raise LineBrokenError(f"cannot connect to the replica: {exc}") from None
        try:
            _nodelay(conn)
            return _front_handshake(conn, self._key, address)
        except TimeoutError:
            conn.close()
            raise
        except LineBrokenError as exc:
            conn.close()
            if not isinstance(exc, _PeerLeftError):
                _front_refused_replica.note(address, exc)
            raise LineBrokenError(f"the replica refused the connection: {exc}") from None
        except OSError as exc:
            conn.close()
            raise LineBrokenError(f"the replica refused the connection: {exc}") from None

    def reset(self) -> None:
        """Forget the address and close the idle connections (the replica died)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self.address = None
        for conn in idle:
            conn.close()
