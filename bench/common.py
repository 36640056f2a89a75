"""Shared pieces of the benchmark: paths, the server process, percentiles, SciFact queries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"


def percentiles_ms(latencies_s: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99 (milliseconds) of latencies in seconds."""
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000
    return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def load_queries(collection: Path, split: str = "test") -> list[tuple[str, str]]:
    """(qid, text) of the judged queries of a BEIR collection, in qrels order."""
    texts: dict[str, str] = {}
    with (collection / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    judged: list[str] = []
    with (collection / "qrels" / f"{split}.tsv").open(encoding="utf-8") as lines:
        for line in lines:
            qid = line.split("\t")[0]
            if qid in texts and qid not in judged:
                judged.append(qid)
    return [(qid, texts[qid]) for qid in judged]


def cli(*args: str, timeout: float = 7200) -> subprocess.CompletedProcess[str]:
    """Run `hybridsearch ARGS` with this interpreter; raise with its output on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "hybridsearch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"hybridsearch {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


@dataclass
class Server:
    """A `hybridsearch serve` process and the address it announced."""

    process: subprocess.Popen[str]
    address: str
    log_path: Path
    metrics_port: int = 0  # 0: no metrics endpoint (a multi-worker server has none)

    def rss_bytes(self) -> int:
        """Resident memory of the server and its worker processes."""
        pids = [self.process.pid, *_children(self.process.pid)]
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its worker processes so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(index: Path, model: Path | None, log_path: Path, *flags: str) -> Server:
    """Start a server on a free port and wait until every health check says SERVING.

    Servers with one worker get a metrics endpoint (``Server.metrics_port``).
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    args = [sys.executable, "-m", "hybridsearch.cli", "serve", "--index", str(index)]
    if model is not None:
        args += ["--model", str(model)]
    metrics_port = 0 if "--workers" in flags else free_port()
    if metrics_port:
        args += ["--metrics-port", str(metrics_port)]
    args += ["--port", "0", "--log-level", "INFO", *flags]
    log = log_path.open("w")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"server did not start; see {log_path}")
    server = Server(process, line.removeprefix("listening on "), log_path, metrics_port)
    deadline = time.monotonic() + 600
    workers = max(1, len(_children(process.pid)))
    serving = 0
    # With several workers each connection lands on one of them: ask until as many distinct
    # connections as workers said SERVING (a worker still loading answers NOT_SERVING).
    while serving < workers and time.monotonic() < deadline:
        with grpc.insecure_channel(
            server.address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            except grpc.RpcError:
                status = None
        if status == health_pb2.HealthCheckResponse.SERVING:
            serving += 1
        else:
            time.sleep(0.5)
    if serving < workers:
        server.stop()
        raise RuntimeError(f"server not SERVING in time; see {log_path}")
    return server


def env_summary() -> dict[str, str]:
    """Machine facts for the results header."""
    import platform

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_avg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": _commit(),
        "gpu": _gpu(),
    }


def _commit() -> str:
    """The checked-out commit, marked when the tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "server"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (server/ modified)" if dirty else "")


def _gpu() -> str:
    """What accelerator the encoder could use here."""
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return "onnxruntime offers CUDAExecutionProvider"
    return (f"none (onnxruntime offers {', '.join(providers)}); every figure below is CPU "
            "only, and the CUDA path (`--device cuda`, I/O binding, `--encoder-fp16`) is "
            "covered by unit tests of its selection only")
