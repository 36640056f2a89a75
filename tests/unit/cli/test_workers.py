"""`serve_workers`: a worker's start-up refusal reaches the operator; a signal reaches the
workers whichever of the parent's threads takes it.

`serve_workers` forks. Each case runs in a fresh interpreter: forking the test process, which
earlier tests may have left with gRPC threads running, can leave a child broken (gRPC skips
its fork handlers then), and one worker's message went missing so in CI.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import signal
import subprocess
import sys

import pytest

SCRIPT = """
import sys
from hybridsearch.cli.workers import serve_workers
from hybridsearch.config import ServerSettings
from hybridsearch.errors import SettingsError

def refuses(_settings, _announce):
    raise SettingsError("--tls-cert (env HYBRIDSEARCH_TLS_CERT): changed under us")

def crashes(_settings, _announce):
    raise RuntimeError("a bug")

child = {"refuses": refuses, "crashes": crashes}[sys.argv[1]]
sys.exit(serve_workers(ServerSettings(host="127.0.0.1", port=0, workers=2), child))
"""


def _serve_workers(child: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, child],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_worker_that_refuses_to_start_prints_why_and_the_parent_exits_2() -> None:
    done = _serve_workers("refuses")
    assert done.returncode == 2, done.stderr
    message = "error: --tls-cert (env HYBRIDSEARCH_TLS_CERT): changed under us\n"
    assert done.stderr.count(message) == 2
    assert "failed to" not in done.stderr


def test_a_worker_that_crashes_prints_its_traceback_and_the_parent_exits_1() -> None:
    done = _serve_workers("crashes")
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("RuntimeError: a bug") == 2
    assert done.stderr.endswith("error: 2 worker(s) failed to start\n")


# The parent's main thread waits in `serve_workers`; another thread of it (the parent of a
# real server has onnxruntime's, now and then) waits for nothing. Each child serves until
# SIGTERM, then exits 0.
FORWARDING = """
import signal, sys, threading
from hybridsearch.cli.workers import serve_workers
from hybridsearch.config import ServerSettings

def child(settings, announce):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    announce(f"127.0.0.1:{settings.port}")
    while not stop.wait(0.05):
        pass
    return 0

started = threading.Event()
other = []
def idle():
    other.append(threading.get_native_id())
    started.set()
    threading.Event().wait()

threading.Thread(target=idle, daemon=True).start()
started.wait()
print("thread", other[0], flush=True)
sys.exit(serve_workers(ServerSettings(host="127.0.0.1", port=0, workers=2), child))
"""

#: tgkill(2)'s number: a signal to one thread of a process (`os.kill` lets the kernel pick).
TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())


@pytest.mark.skipif(TGKILL is None, reason="tgkill's number is known here for x86_64 and aarch64")
def test_a_signal_taken_by_another_thread_of_the_parent_is_forwarded() -> None:
    # The parent's main thread blocked in waitpid, which a signal another thread takes does
    # not interrupt: the workers never heard of it.
    with subprocess.Popen(
        [sys.executable, "-c", FORWARDING],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own: the cleanup ends every worker
    ) as parent:
        try:
            assert parent.stdout is not None
            tid = int(parent.stdout.readline().split()[1])
            assert parent.stdout.readline().startswith("listening on 127.0.0.1:")
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.syscall(TGKILL, parent.pid, tid, int(signal.SIGTERM)) == 0
            assert parent.wait(timeout=60) == 0
        finally:
            _kill_group(parent)


def _kill_group(leader: subprocess.Popen[str]) -> None:
    """SIGKILL the process group ``leader`` leads (the parent and every worker it forked,
    whichever are left) and reap the leader."""
    with contextlib.suppress(ProcessLookupError):  # none left: the test passed
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()
