"""`serve --workers N`: N server processes on one port, forked before any gRPC object exists.

The parent binds the port first (so ``--port 0`` resolves to one port for all), with
SO_REUSEPORT, and keeps that socket bound but not listening: the kernel spreads new
connections over the children's listening sockets. Each child opens the index itself; the
index files are memory-mapped read-only, so their pages are shared through the page cache.
The parent prints ``listening on HOST:PORT`` once every child has bound, forwards SIGTERM and
SIGINT to the children, and exits with the worst child exit code. It never blocks in a call
a signal cannot end: the parent has threads of its libraries (onnxruntime's), and a signal
the kernel hands to one of those would not interrupt the main thread's ``waitpid`` or
``read``, so the forward would wait for a child to exit by itself. It waits in ``select`` on
a wakeup pipe instead, which the signal's C handler writes to on whichever thread takes it
(`signal.set_wakeup_fd`; a child's exit, SIGCHLD, writes to it too). A child that refuses to
start (a `HybridSearchError`) prints ``error: ...`` and exits 2, and so does the parent; the
token and TLS files are checked before the fork (`hybridsearch.startup_files`), so a bad one
is reported once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from types import FrameType

from hybridsearch.api.server import format_address
from hybridsearch.config import ServerSettings, describe
from hybridsearch.errors import HybridSearchError, SetupError

ChildMain = Callable[[ServerSettings, Callable[[str], None]], int]
REFUSED = 2  # the exit code of a start-up refusal (a HybridSearchError), as in one process


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Bind (not listen) ``host:port`` with SO_REUSEPORT; returns the socket and the port."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise HybridSearchError("--workers > 1 needs SO_REUSEPORT (Linux, BSD, macOS)")
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        address_text = format_address(host, port)
        raise SetupError(
            f"{describe('port')}: cannot bind {address_text}: {exc.strerror or exc}"
        ) from None
    return sock, int(sock.getsockname()[1])


def serve_workers(settings: ServerSettings, child_main: ChildMain) -> int:
    """Fork ``settings.workers`` children running ``child_main``; returns the exit code.

    ``child_main(settings, announce)`` serves on ``settings.port`` and calls ``announce`` with
    its address once it has bound.
    """
    reserved, port = reserve_port(settings.host, settings.port)
    settings = dataclasses.replace(settings, port=port)
    ready_read, ready_write = os.pipe()
    children: list[int] = []
    sys.stdout.flush()
    sys.stderr.flush()
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # child: never returns into the parent's code
            os.close(ready_read)
            reserved.close()
            code = 1
            try:
                code = child_main(settings, lambda _address: _announce(ready_write))
            except HybridSearchError as exc:  # as `hybridsearch` reports it in one process
                _write_stderr(f"error: {exc}\n")
                code = REFUSED
            except Exception:  # printed here: os._exit below would lose it
                _write_stderr(traceback.format_exc())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    os.close(ready_write)

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            _signal(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    with _Wakeup() as wakeup:
        ready = _read_ready(ready_read, settings.workers, wakeup)
        os.close(ready_read)
        if ready == settings.workers:
            host = settings.host
            address = (
                f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
            )
            print(f"listening on {address}", flush=True)
        else:
            forward(signal.SIGTERM, None)
        codes = [_wait(child, wakeup) for child in children]
    reserved.close()
    if ready == settings.workers:
        return max(codes)
    if REFUSED in codes:  # a worker refused to start and printed why
        return REFUSED
    print(f"error: {settings.workers - ready} worker(s) failed to start", file=sys.stderr)
    return max(*codes, 1)


def _write_stderr(text: str) -> None:
    """``text`` to stderr in one write: print() writes the line and its newline apart, and
    two workers refusing at once interleaved their messages mid-line."""
    sys.stdout.flush()
    sys.stderr.flush()
    data = text.encode(errors="replace")
    while data:
        written = os.write(2, data)
        data = data[written:]


def _announce(fd: int) -> None:
    os.write(fd, b"1")
    os.close(fd)


class _Wakeup:
    """The pipe that signals wake the parent's main thread through (`signal.set_wakeup_fd`):
    the Python handlers (`forward`) run on the main thread once it runs Python code again,
    which it does when `wait` returns. SIGCHLD gets a handler so that a child's exit writes
    to the pipe too."""

    def __enter__(self) -> _Wakeup:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._child_handler = signal.signal(signal.SIGCHLD, _on_child_exit)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        return self

    def __exit__(self, *_exc: object) -> None:
        signal.set_wakeup_fd(self._previous)
        signal.signal(signal.SIGCHLD, self._child_handler)
        os.close(self._read)
        os.close(self._write)

    def wait(self, fd: int | None = None) -> bool:
        """Until a signal came (or a child exited) or ``fd`` is readable; whether ``fd`` is."""
        watched = [self._read] if fd is None else [self._read, fd]
        readable, _, _ = select.select(watched, [], [])
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):  # drained: the next signal wakes the next wait
                pass
        return fd is not None and fd in readable


def _on_child_exit(_signum: int, _frame: FrameType | None) -> None:
    """SIGCHLD's handler: nothing to do but exist (its C handler writes to the wakeup pipe)."""


def _read_ready(fd: int, expected: int, wakeup: _Wakeup) -> int:
    """Count children that bound; stops early at EOF (every child closed the pipe)."""
    count = 0
    while count < expected:
        if not wakeup.wait(fd):
            continue
        chunk = os.read(fd, expected - count)
        if not chunk:
            break
        count += len(chunk)
    return count


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait(pid: int, wakeup: _Wakeup) -> int:
    """Child ``pid``'s exit code, waiting in `_Wakeup.wait` (where signals are forwarded)."""
    while True:
        try:
            exited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if exited:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code  # killed by a signal: 128 + signal number
        wakeup.wait()  # an exit after the waitpid above has written to the pipe already
