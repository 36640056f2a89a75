"""The one test and benchmark harness: run the CLI, start a ``hybridsearch serve`` subprocess,
wait until it is SERVING, measure it, stop it. Shared by ``tests/``, ``bench/`` and
``scripts/``; the server itself never imports this module.

For shell scripts::

    python -m hybridsearch.harness serve-then [--program CLI] [--wait-s S] [--server-log PATH] \\
        SERVE_ARGS... -- COMMAND...

starts ``serve --port 0 SERVE_ARGS``, waits for SERVING, runs COMMAND with
``HYBRIDSEARCH_ADDR=HOST:PORT`` in its environment, stops the server with SIGTERM and exits
with COMMAND's status (1 when COMMAND passed but the server did not exit cleanly).
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import grpc

CLI = (sys.executable, "-m", "hybridsearch.cli")
LISTENING = "listening on "
ADDRESS_ENV = "HYBRIDSEARCH_ADDR"
STDERR_TAIL_LINES = 30


class CliFailedError(subprocess.CalledProcessError):
    """A CLI run that exited non-zero; its message ends with the tail of its stderr."""

    def __str__(self) -> str:
        tail = (self.stderr or "")[-3000:]
        return f"{super().__str__()}\n{tail}"


def run_cli(
    *args: str, check: bool = True, timeout: float = 900.0
) -> subprocess.CompletedProcess[str]:
    """Run ``hybridsearch ARGS`` with this interpreter, capturing its output as text.

    With ``check``, a non-zero exit raises :class:`CliFailedError` (a CalledProcessError that
    shows the command's stderr).
    """
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and done.returncode != 0:
        raise CliFailedError(done.returncode, done.args, done.stdout, done.stderr)
    return done


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for ``--metrics-port``)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A server subprocess and the address it announced.

    Its stderr goes to ``log_path`` when one was given, else it is echoed to this process's
    stderr and its last lines are kept for error messages.
    """

    process: subprocess.Popen[str]
    address: str
    log_path: Path | None = None
    metrics_port: int = 0  # 0: started without a metrics endpoint
    _tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=200), repr=False
    )
    _drain: threading.Thread | None = field(default=None, repr=False)

    @property
    def metrics_url(self) -> str:
        """The Prometheus endpoint of a server started with ``metrics=True``."""
        if not self.metrics_port:
            raise RuntimeError("this server was started without a metrics endpoint")
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout`` seconds); returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._drain is not None:
            self._drain.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last ``lines`` lines the server wrote to stderr."""
        if self.log_path is not None:
            try:
                kept = self.log_path.read_text(errors="replace").splitlines()
            except OSError as exc:
                return f"(cannot read {self.log_path}: {exc.strerror})"
        else:
            kept = list(self._tail)
        return "\n".join(kept[-lines:])

    def wait_serving(self, timeout: float = 300.0, connections: int = 1) -> None:
        """:func:`wait_serving` on this server; a failure names its exit code and stderr."""
        try:
            wait_serving(self.address, timeout, connections=connections)
        except Exception as exc:
            try:  # a server that failed to load is exiting: report its own exit code
                code: int | None = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            raise RuntimeError(
                f"server at {self.address} did not become SERVING ({exc}); "
                f"exit code {code}; stderr:\n{self.stderr_tail()}"
            ) from exc

    def pids(self) -> list[int]:
        """The server process and its direct children (the workers of ``--workers N``)."""
        return [self.process.pid, *_children(self.process.pid)]

    def rss_bytes(self) -> int:
        """Resident memory of the server and its worker processes now."""
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue  # a worker that exited meanwhile
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its worker processes so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                # The command name may hold spaces: the fields start after its ")".
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def start_server(
    *serve_args: str,
    program: Sequence[str] = (*CLI, "serve"),
    log_path: Path | None = None,
    metrics: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    announce_timeout: float = 120.0,
    pass_fds: Sequence[int] = (),
    new_session: bool = False,
) -> ServerProcess:
    """Start ``PROGRAM --port 0 SERVE_ARGS``; return once it printed ``listening on HOST:PORT``.

    It is not SERVING yet (the index loads after the announcement): call
    :meth:`ServerProcess.wait_serving`. ``metrics`` adds ``--metrics-port`` on a free port;
    ``pass_fds`` are inherited by the server (as ``/dev/fd/N`` paths name them).
    ``new_session``: the server leads a session and process group of its own (its pid is the
    group's id), as under a terminal or systemd, so that a signal can go to the whole group.
    Raises RuntimeError with the server's stderr when no address is announced.
    """
    metrics_port = free_port() if metrics else 0
    argv = [*program, "--port", "0", *serve_args]
    if metrics_port:
        argv += ["--metrics-port", str(metrics_port)]
    log = log_path.open("w") if log_path is not None else None
    try:
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.PIPE,
            text=True,
            env=None if env is None else dict(env),
            cwd=cwd,
            pass_fds=tuple(pass_fds),
            start_new_session=new_session,
        )
    finally:
        if log is not None:
            log.close()  # the child holds its own descriptor
    server = ServerProcess(process, "", log_path, metrics_port)
    if process.stderr is not None:
        server._drain = threading.Thread(
            target=_echo_and_keep, args=(process.stderr, server._tail, sys.stderr), daemon=True
        )
        server._drain.start()
    line = _first_line(process, announce_timeout)
    if not line.startswith(LISTENING):
        code = server.stop(timeout=10)
        raise RuntimeError(
            f"{' '.join(argv)} did not announce its address (first line {line!r}, "
            f"exit code {code}); stderr:\n{server.stderr_tail()}"
        )
    server.address = line.removeprefix(LISTENING)
    return server


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, or "" when none arrives within ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline().strip()


def _echo_and_keep(stream: IO[str], tail: collections.deque[str], echo: IO[str]) -> None:
    """Copy the server's stderr to ``echo`` and keep its tail.

    ``echo`` is our stderr as it was when the server started: under pytest, the capture of
    that moment, as when the child inherited the descriptor (not the terminal between tests).
    """
    for line in stream:
        tail.append(line.rstrip("\n"))
        try:
            echo.write(line)
        except (ValueError, OSError):  # that stream is closed (its capture ended)
            continue


def wait_serving(
    address: str,
    timeout: float = 300.0,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    metadata: Sequence[tuple[str, str]] | None = None,
    connections: int = 1,
) -> None:
    """Block until grpc.health.v1 reports SERVING: a Watch stream, no polling sleeps.

    ``connections`` > 1 watches over that many separate connections in turn; a server of N
    workers spreads new connections over them (though two may land on the same worker).
    Raises RuntimeError when the stream ends first, grpc.RpcError when the deadline passes.
    """
    import grpc  # noqa: PLC0415 (kept off the import path of `hybridsearch.harness` users)
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    # A local subchannel pool per channel: each channel opens its own TCP connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    for _ in range(connections):
        if credentials is None:
            channel = grpc.insecure_channel(address, options=options)
        else:
            channel = grpc.secure_channel(address, credentials, options=options)
        with channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types lack Watch
            updates = stub.Watch(
                health_pb2.HealthCheckRequest(service=""),
                timeout=max(0.0, deadline - time.monotonic()),
                metadata=metadata,
            )
            if not any(u.status == health_pb2.HealthCheckResponse.SERVING for u in updates):
                raise RuntimeError(f"health stream of {address} ended before SERVING")
            updates.cancel()


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (children, their children, ...) with its command line,
    from /proc (Linux): e.g. the Ray processes a server started."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                try:
                    raw = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                found[child] = raw.replace(b"\0", b" ").decode(errors="replace")
                pending.append(child)
    return found


def percentiles_ms(latencies_s: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds of latencies in seconds (linear interpolation)."""
    ms = np.asarray(list(latencies_s), dtype=np.float64) * 1000
    return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of unsorted values; 0 for none.

    The value at 1-based rank ceil(fraction x n) (rounded first, so 0.9 x 10 is rank 9).
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = math.ceil(round(fraction * len(ordered), 9))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def serve_then(argv: Sequence[str]) -> int:
    """``serve-then``: serve, run a command against the server, stop it; see the module doc."""
    if "--" not in argv:
        raise SystemExit("usage: serve-then [options] SERVE_ARGS... -- COMMAND...")
    split = list(argv).index("--")
    command = list(argv[split + 1 :])
    if not command:
        raise SystemExit("serve-then: no command after --")
    parser = argparse.ArgumentParser(prog="serve-then", allow_abbrev=False)
    parser.add_argument("--program", help="server CLI executable (default: this interpreter)")
    parser.add_argument("--wait-s", type=float, default=120.0, help="deadline for SERVING")
    parser.add_argument("--server-log", type=Path, help="keep the server's stderr here")
    options, serve_args = parser.parse_known_args(argv[:split])
    program = (options.program, "serve") if options.program else (*CLI, "serve")
    with tempfile.TemporaryDirectory(prefix="hybridsearch-serve-") as scratch:
        log_path = options.server_log or Path(scratch) / "serve.err"
        try:
            server = start_server(*serve_args, program=program, log_path=log_path)
        except RuntimeError as exc:
            print(f"serve-then: {exc}", file=sys.stderr)
            return 1
        try:
            server.wait_serving(options.wait_s)
        except RuntimeError as exc:  # the message holds the server's stderr
            server.stop()
            print(f"serve-then: {exc}", file=sys.stderr)
            return 1
        print(f"== server SERVING on {server.address}", file=sys.stderr, flush=True)
        try:
            env = {**os.environ, ADDRESS_ENV: server.address}
            command_code = subprocess.run(command, env=env, check=False).returncode
        finally:
            server_code = server.stop()
        if server_code != 0:
            print(
                f"server exited with status {server_code} after SIGTERM; its stderr:\n"
                f"{server.stderr_tail()}",
                file=sys.stderr,
            )
            return command_code or 1
    return command_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hybridsearch.harness``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve-then":
        print(__doc__, file=sys.stderr)
        return 2
    return serve_then(args[1:])


if __name__ == "__main__":
    sys.exit(main())
