"""`serve_workers`: a worker's start-up refusal reaches the operator.

`serve_workers` forks. Each case runs in a fresh interpreter: forking the test process, which
earlier tests may have left with gRPC threads running, can leave a child broken (gRPC skips
its fork handlers then), and one worker's message went missing so in CI.
"""

from __future__ import annotations

import subprocess
import sys

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
