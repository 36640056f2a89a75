"""Shared pieces of the benchmark: paths, queries, a measured server, machine facts.

Run bench modules from the repository root as ``python -m bench.<module>`` (the package
``bench`` must be importable); the server process itself comes from ``hybridsearch.harness``.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import subprocess
import urllib.request
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import onnxruntime

from hybridsearch.harness import ServerProcess, start_server

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"


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


def sample_queries() -> list[str]:
    """The 225 Cranfield queries bundled with the sample corpus."""
    path = resources.files("hybridsearch") / "data" / "cranfield-queries.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the process ``pid`` alone (0 once gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_bench_server(
    index: Path,
    model: Path | None,
    log_path: Path,
    *flags: str,
    env: Mapping[str, str] | None = None,
) -> ServerProcess:
    """A server at INFO (its log in ``log_path``), returned once every worker is SERVING.

    One-worker servers get a metrics endpoint (``metrics_port``); a server of N workers has
    none, and is watched over N connections (the kernel spreads them over the workers).
    ``env``: the server's environment (default: this process's).
    """
    model_args = ["--model", str(model)] if model is not None else []
    workers = int(flags[flags.index("--workers") + 1]) if "--workers" in flags else 1
    server = start_server(
        "--index", str(index), *model_args, "--log-level", "INFO", *flags,
        log_path=log_path, metrics=workers == 1, env=env,
    )  # fmt: skip
    try:
        server.wait_serving(timeout=600, connections=workers)
    except BaseException:
        server.stop()
        raise
    return server


def metrics_lines(metrics_url: str, *prefixes: str, timeout_s: float = 10.0) -> str:
    """The lines of a server's Prometheus text that start with one of ``prefixes``."""
    with urllib.request.urlopen(metrics_url, timeout=timeout_s) as reply:
        text: str = reply.read().decode()
    return "\n".join(line for line in text.splitlines() if line.startswith(prefixes))


def env_summary() -> dict[str, str]:
    """Machine facts for the results header."""
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
        "commit": tree_commit(REPO) or "unknown",
        "gpu": _gpu(),
    }


def tree_commit(tree: Path) -> str | None:
    """The short hash of the commit checked out at ``tree`` (a checkout of this repository),
    marked when its ``server/`` has uncommitted changes; None when ``tree`` is no git checkout
    or git cannot be run."""
    try:
        head = _git(tree, "rev-parse", "--short", "HEAD")
        dirty = _git(tree, "status", "--porcelain", "--", "server")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" (server/ modified)" if dirty else "")


def _git(tree: Path, *args: str) -> str:
    """What ``git -C tree ARGS`` prints, stripped; raises CalledProcessError when it fails."""
    done = subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _gpu() -> str:
    """What accelerator the encoder could use here."""
    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return "onnxruntime offers CUDAExecutionProvider"
    return (
        f"none (onnxruntime offers {', '.join(providers)}); every figure below is CPU "
        "only, and the CUDA path (`--device cuda`, I/O binding, `--encoder-fp16`) is "
        "covered by unit tests of its selection only"
    )
