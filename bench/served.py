"""Start a `hybridsearch serve` subprocess for a benchmark, and read its memory.

Shared by bench/soak.py and bench/flood.py; run them from the repository root with
``PYTHONPATH=server`` (or an installed package).
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for the metrics endpoint)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    """A server subprocess: its address, metrics port and pid."""

    process: subprocess.Popen[str]
    address: str
    metrics_port: int

    def rss_bytes(self) -> int:
        """Resident set size of the server process now."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def stop(self) -> int:
        """SIGTERM, wait, return the exit code."""
        self.process.terminate()
        code = self.process.wait(timeout=60)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def start(serve_args: list[str]) -> Served:
    """``hybridsearch serve --port 0 --metrics-port P ARGS``; returns once it is listening."""
    metrics_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hybridsearch.cli", "serve", "--port", "0",
         "--metrics-port", str(metrics_port), "--log-level", "WARNING", *serve_args],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return Served(process, line.removeprefix("listening on "), metrics_port)


def wait_serving(address: str, timeout_s: float = 600.0) -> None:
    """Block until the server's health is SERVING."""
    import grpc  # noqa: PLC0415
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="")
        for update in stub.Watch(request, timeout=timeout_s):
            if update.status == health_pb2.HealthCheckResponse.SERVING:
                return
    raise RuntimeError("health stream ended before SERVING")


def sample_queries() -> list[str]:
    """The 225 Cranfield queries bundled with the sample corpus."""
    path = Path(str(resources.files("hybridsearch") / "data" / "cranfield-queries.jsonl.gz"))
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]
