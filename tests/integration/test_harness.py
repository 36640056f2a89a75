"""The harness that tests, bench/ and scripts/ share: server start-up errors, measurements and
`python -m hybridsearch.harness serve-then` (what scripts/clients_test.sh and ghz_smoke.sh use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hybridsearch.harness import percentile, percentiles_ms
from tests.conftest import ServerProcess, start_server

SERVE_THEN = [sys.executable, "-m", "hybridsearch.harness", "serve-then"]


def serve_then(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVE_THEN, *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_a_server_that_announces_nothing_fails_with_its_stderr() -> None:
    with pytest.raises(RuntimeError, match="unrecognized arguments: --no-such-flag"):
        start_server("--no-such-flag")


def test_server_cpu_and_memory_are_read_from_proc(tiny_sparse_index: Path) -> None:
    server: ServerProcess = start_server("--index", str(tiny_sparse_index))
    try:
        server.wait_serving()
        assert server.rss_bytes() > 10 * 2**20  # a Python process with grpc and tantivy
        assert server.cpu_seconds() > 0
    finally:
        assert server.stop() == 0


def test_serve_then_runs_the_command_against_the_serving_server(tiny_sparse_index: Path) -> None:
    probe = '"$0" -m hybridsearch.cli health --server "$HYBRIDSEARCH_ADDR"; exit 3'
    done = serve_then("--index", str(tiny_sparse_index), "--", "sh", "-c", probe, sys.executable)
    assert done.stdout.strip() == "SERVING"
    assert done.returncode == 3  # the command's own status


def test_serve_then_fails_when_the_index_cannot_load(tmp_path: Path) -> None:
    # a directory that holds no index (a missing one stops serve before it binds: exit 2)
    done = serve_then("--index", str(tmp_path), "--", "true")
    assert done.returncode == 1
    assert "cannot load the index" in done.stderr


def test_percentiles() -> None:
    assert percentiles_ms([0.001, 0.002, 0.003]) == pytest.approx(
        {"p50": 2.0, "p95": 2.9, "p99": 2.98}
    )
    values = [float(v) for v in range(10, 0, -1)]  # 10 .. 1, unsorted on purpose
    assert percentile(values, 0.9) == 9.0
    assert percentile(values, 0.95) == 10.0
    assert percentile(values, 0.5) == 5.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([], 0.9) == 0.0
