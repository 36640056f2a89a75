"""Live-server fixtures: the address comes from HYBRIDSEARCH_ADDR (scripts/clients_test.sh)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hybridsearch_client import HybridSearchClient

# Words that occur in the bundled sample corpus, so BM25 returns hits.
QUERY = os.environ.get("HYBRIDSEARCH_TEST_QUERY", "boundary layer")
OTHER_QUERY = os.environ.get("HYBRIDSEARCH_TEST_OTHER_QUERY", "supersonic flow")


@pytest.fixture(scope="session")
def addr() -> str:
    value = os.environ.get("HYBRIDSEARCH_ADDR")
    if not value:
        pytest.skip("HYBRIDSEARCH_ADDR is not set: run scripts/clients_test.sh to start a server")
    return value


@pytest.fixture
def client(addr: str) -> Iterator[HybridSearchClient]:
    with HybridSearchClient(addr, timeout=10.0) as c:
        yield c


@pytest.fixture(scope="session")
def filter_collection(addr: str) -> str:
    """A hybrid (MiniLM + BM25) SciFact collection with the synthetic metadata of
    server/hybridsearch/eval/synthetic_metadata.py (year, journal, topics, open_access, impact,
    published, erratum)."""
    value = os.environ.get("HYBRIDSEARCH_FILTER_COLLECTION")
    if not value:
        pytest.skip(
            "HYBRIDSEARCH_FILTER_COLLECTION is not set: name a hybrid SciFact collection with "
            "synthetic metadata (scripts/clients_test.sh sets it)"
        )
    return value
