"""A direct line from the sharded front to a shard replica: a held TCP connection.

Ray places the replicas, restarts one that dies, and tells the front where each one listens
(`ray_group`); a query's request and reply then travel over a connection the front holds
open to the replica, not as a Ray task. Measured side by side on 2 cores
(bench/ray_hop.py): a Ray actor call costs p50 about 1–2 ms by itself (task submission, the
core workers' gRPC, dispatch onto the actor's thread, the reply through the object store),
the same bytes over a held connection a few hundredths of a millisecond.

The protocol, over TCP (``TCP_NODELAY``):

- every message is its length (8 bytes, big-endian) and that many bytes;
- a connection starts with a mutual challenge: the replica sends 32 random bytes, the front
  answers with their HMAC-SHA256 under the group's key and 32 random bytes of its own, the
  replica answers those the same way. The key is random, made by the front for the group
  and given to its replicas through Ray when it creates them. A replica never reads a
  request before the peer proved it holds the key, and closes the connection otherwise;
- then requests and replies in turn: a request is the pickle of ``(method, args)``, a reply
  the pickle of ``(True, result)`` or ``(False, exception)``.

A replica serves each connection on a thread of its own; the front holds a pool of idle
connections per replica (`ReplicaLine`), one per call in flight, so calls to one replica run
concurrently as they did through Ray. At most `MAX_HANDSHAKES` connections may be proving
the key at once (a peer has `HANDSHAKE_TIMEOUT_S` to do it): one more is closed as soon as it
is accepted, so peers that connect and say nothing cannot make a replica start a thread each
(sshd's ``MaxStartups`` rule). The front's connections already proven are not affected, and
its new ones prove the key in well under a millisecond.
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
CHALLENGE_BYTES = 32
#: A peer has this long to answer the challenge before the replica drops it.
HANDSHAKE_TIMEOUT_S = 5.0
#: How many connections may be proving the key at once; more are closed when accepted.
MAX_HANDSHAKES = 32
#: A replica refusing connections logs it at most once in this many seconds.
REFUSAL_LOG_EVERY_S = 10.0
#: The largest message a replica reads (a request is a query or a batch of documents).
MAX_MESSAGE_BYTES = 1 << 30

Address = tuple[str, int]


class LineBrokenError(ConnectionError):
    """The connection ended, was refused, or the peer failed the challenge."""


def new_key() -> bytes:
    """A group's random key."""
    return secrets.token_bytes(32)


def _digest(key: bytes, challenge: bytes) -> bytes:
    return hmac.new(key, challenge, hashlib.sha256).digest()


def _read_exact(conn: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = conn.recv_into(view[got:])
        if count == 0:
            raise LineBrokenError("the peer closed the connection")
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


def _prove(conn: socket.socket, key: bytes) -> None:
    """Answer the peer's challenge."""
    challenge = read_message(conn, CHALLENGE_BYTES)
    send_message(conn, _digest(key, challenge))


def _check(conn: socket.socket, key: bytes) -> None:
    """Challenge the peer (`LineBrokenError` unless it answers with ``key``'s digest)."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    send_message(conn, challenge)
    answer = read_message(conn, CHALLENGE_BYTES)
    if not hmac.compare_digest(answer, _digest(key, challenge)):
        raise LineBrokenError("the peer does not hold the group's key")


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
        self._refused_since_log = 0
        self._logged_at = -REFUSAL_LOG_EVERY_S
        self._server = socket.create_server((host, 0), backlog=64)
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
                self._note_refusal()
                continue
            try:
                threading.Thread(
                    target=self._serve, args=(conn,), name="replica-call", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: refuse this one, keep accepting
                self._handshakes.release()
                conn.close()
                self._note_refusal()

    def _note_refusal(self) -> None:
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_EVERY_S:
            log.warning(
                "a shard replica closed %d new connection(s) unanswered: %d peers were "
                "already proving the key, the most it allows at once",
                self._refused_since_log,
                self._max_handshakes,
            )
            self._refused_since_log = 0
            self._logged_at = now

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                try:
                    _nodelay(conn)
                    conn.settimeout(self._handshake_timeout_s)
                    _check(conn, self._key)
                    _prove(conn, self._key)
                    conn.settimeout(None)
                finally:
                    self._handshakes.release()
                while True:
                    method, args = pickle.loads(read_message(conn))
                    send_message(conn, self._reply(method, args))
            except (OSError, EOFError, ValueError, pickle.UnpicklingError):
                return  # the peer left, broke the protocol or failed the challenge

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


class ReplicaLine:
    """The front's connections to one replica: idle ones are reused, a call in flight holds
    one of its own. ``address`` is where the replica listens (None: unknown, e.g. after it
    died; the group asks Ray again)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._lock = threading.Lock()
        self._idle: list[socket.socket] = []
        self.address: Address | None = None

    def send(self, payload: bytes, timeout: float) -> socket.socket:
        """Send a request; the connection it went on, to `receive` the reply from.

        Raises:
            LineBrokenError: no connection could be made or the request not sent.
            TimeoutError: ``timeout`` seconds passed first.
        """
        conn = self._take(timeout)
        try:
            conn.settimeout(timeout)
            send_message(conn, payload)
        except BaseException:
            conn.close()
            raise
        return conn

    def receive(self, conn: socket.socket, timeout: float) -> bytes:
        """The reply to the request sent on ``conn``; the connection is then idle again.

        Raises:
            LineBrokenError: the connection ended first (the replica died).
            TimeoutError: ``timeout`` seconds passed first (the connection is closed: its
                reply would come later).
        """
        try:
            conn.settimeout(timeout)
            reply = read_message(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._idle.append(conn)
        return reply

    def _take(self, timeout: float) -> socket.socket:
        with self._lock:
            if self._idle:
                return self._idle.pop()
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
            _prove(conn, self._key)
            _check(conn, self._key)
        except TimeoutError:
            conn.close()
            raise
        except OSError as exc:
            conn.close()
            raise LineBrokenError(f"the replica refused the connection: {exc}") from None
        return conn

    def reset(self) -> None:
        """Forget the address and close the idle connections (the replica died)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self.address = None
        for conn in idle:
            conn.close()
