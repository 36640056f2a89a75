"""Integration fixtures: servers over the tiny corpus, run in-process (see `in_process`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridsearch.config import ServerSettings
from tests.integration.in_process import InProcessServer, in_process_server


@pytest.fixture(scope="session")
def sparse_server(tiny_sparse_index: Path) -> Iterator[InProcessServer]:
    """A server over the tiny BM25-only index."""
    with in_process_server(ServerSettings(index=tiny_sparse_index, port=0)) as server:
        yield server


@pytest.fixture(scope="session")
def hybrid_server(tiny_hybrid_index: Path, model_dir: Path) -> Iterator[InProcessServer]:
    """A server over the tiny index with vectors, encoding queries with the default model."""
    settings = ServerSettings(index=tiny_hybrid_index, model=model_dir, port=0)
    with in_process_server(settings) as server:
        yield server
