"""Load through gRPC with ghz (server reflection): QPS, p50/p95/p99 and errors per point."""

from __future__ import annotations

import json
import resource
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import REPO, metrics_lines

GO_TOOLS = REPO / "scripts" / "go_tools.sh"  # the pins of ghz and grpcurl live there
PROTO = REPO / "proto" / "hybridsearch" / "v1" / "search.proto"
SEARCH = "hybridsearch.v1.SearchService.Search"
BATCH = "hybridsearch.v1.SearchService.BatchSearch"
MODES = {
    "hybrid": "RETRIEVAL_MODE_HYBRID",
    "sparse": "RETRIEVAL_MODE_SPARSE",
    "dense": "RETRIEVAL_MODE_DENSE",
}


@dataclass
class LoadPoint:
    """One ghz run."""

    scenario: str
    concurrency: int
    requests: int
    qps: float  # requests per second (BatchSearch: queries per second = qps x batch)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int]
    queries_per_request: int = 1
    ghz_cpu_s: float = 0.0  # CPU time of the load generator itself (it shares the machine)

    @property
    def query_qps(self) -> float:
        """Queries answered per second."""
        return self.qps * self.queries_per_request

    def to_json(self) -> dict[str, object]:
        """As a JSON object (with query_qps)."""
        return {**asdict(self), "query_qps": self.query_qps}


def ensure_ghz() -> Path:
    """The pinned ghz, installed into .cache/go/bin on first use (scripts/go_tools.sh)."""
    done = subprocess.run(
        ["bash", str(GO_TOOLS), "ghz"], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(done.stdout.strip())


def search_data(queries: list[str], mode: str, top_k: int = 10) -> list[dict[str, object]]:
    """Unary Search messages, one per query (ghz sends them round robin)."""
    return [{"query": q, "top_k": top_k, "mode": MODES[mode]} for q in queries]


def batch_data(queries: list[str], size: int, top_k: int = 10) -> list[dict[str, object]]:
    """BatchSearch messages of ``size`` hybrid queries each."""
    return [
        {"requests": search_data(queries[i : i + size], "hybrid", top_k)}
        for i in range(0, len(queries) - size + 1, size)
    ]


def run_ghz(
    address: str,
    scenario: str,
    call: str,
    data: list[dict[str, object]],
    *,
    concurrency: int,
    duration_s: float,
    work: Path,
    queries_per_request: int = 1,
    proto: bool = False,
) -> LoadPoint:
    """One ghz run of ``duration_s`` at ``concurrency``; connections = min(concurrency, 4).

    The call is described by server reflection, or by the proto files when ``proto`` (for a
    server without reflection).
    """
    work.mkdir(parents=True, exist_ok=True)
    data_file = work / f"{scenario}.data.json"
    data_file.write_text(json.dumps(data))
    out = work / f"{scenario}-c{concurrency}.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    described = (
        ["--proto", str(PROTO), "--import-paths", str(PROTO.parent.parent.parent)] if proto else []
    )
    subprocess.run(
        [
            str(ensure_ghz()),
            "--insecure",
            *described,
            "--call",
            call,
            "--data-file",
            str(data_file),
            "--concurrency",
            str(concurrency),
            "--connections",
            str(min(concurrency, 4)),
            "--duration",
            f"{duration_s}s",
            "--duration-stop",
            "wait",
            "--timeout",
            "30s",
            "--format",
            "json",
            "--output",
            str(out),
            address,
        ],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ghz_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads(out.read_text())
    ns = 1e6
    latency = {
        int(p["percentage"]): p["latency"] / ns for p in report.get("latencyDistribution") or []
    }
    codes = report.get("statusCodeDistribution") or {}
    errors = sum(n for code, n in codes.items() if code != "OK")
    return LoadPoint(
        scenario=scenario,
        concurrency=concurrency,
        requests=int(report["count"]),
        qps=float(report["rps"]),
        p50_ms=latency.get(50, 0.0),
        p95_ms=latency.get(95, 0.0),
        p99_ms=latency.get(99, 0.0),
        errors=errors,
        error_kinds={k: v for k, v in codes.items() if k != "OK"},
        queries_per_request=queries_per_request,
        ghz_cpu_s=ghz_cpu,
    )


def scrape_encoder_batches(metrics_url: str) -> tuple[float, float]:
    """(micro-batches run, queries in them) from a server's /metrics."""
    values = {}
    for line in metrics_lines(metrics_url, "hybridsearch_encoder_batch").splitlines():
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return (
        values.get("hybridsearch_encoder_batches_total", 0.0),
        values.get("hybridsearch_encoder_batched_queries_total", 0.0),
    )
