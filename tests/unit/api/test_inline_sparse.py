"""Cheap sparse-only searches run on the event loop; everything else hops to the pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hybridsearch.api import search_servicer
from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.api.search_servicer import SearchServicer
from hybridsearch.config import ServerSettings
from hybridsearch.engine.loader import load_engine
from hybridsearch.v1 import filter_pb2
from hybridsearch.v1 import search_pb2 as pb


class CountingPool(ThreadPoolExecutor):
    """A real pool that counts the work handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


class NoDeadline:
    def time_remaining(self) -> float | None:
        return None


@pytest.fixture
def served(tiny_sparse_index: Path) -> Iterator[tuple[SearchServicer, CountingPool]]:
    settings = ServerSettings(index=tiny_sparse_index)
    engine = load_engine(settings)
    slot = EngineSlot()
    slot.set(engine)
    pool = CountingPool()
    try:
        yield SearchServicer(slot, settings, pool), pool
    finally:
        pool.shutdown()
        engine.close()


def search(servicer: SearchServicer, request: pb.SearchRequest) -> list[str]:
    response = asyncio.run(servicer.Search(request, NoDeadline()))  # type: ignore[arg-type]
    return [hit.id for hit in response.hits]


SPARSE = pb.SearchRequest(query="boundary layer transition", mode=pb.RETRIEVAL_MODE_SPARSE)


def test_a_cheap_sparse_search_skips_the_pool(
    served: tuple[SearchServicer, CountingPool],
) -> None:
    servicer, pool = served
    assert search(servicer, SPARSE)[0] == "d01"
    assert pool.submitted == 0


def test_a_slow_collection_or_a_filter_keeps_the_pool(
    served: tuple[SearchServicer, CountingPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, pool = served
    inline = search(servicer, SPARSE)
    filtered = pb.SearchRequest()
    filtered.CopyFrom(SPARSE)
    filtered.filter.must.add(has_id=filter_pb2.HasId(ids=["d01", "d02"]))
    search(servicer, filtered)
    assert pool.submitted == 1
    monkeypatch.setattr(search_servicer, "INLINE_SPARSE_MAX_US", 0.0)  # every search "slow"
    assert search(servicer, SPARSE) == inline  # same answer through the pool
    assert pool.submitted == 2


@pytest.mark.parametrize(
    "extra",
    [
        pb.SearchRequest(return_fields=[pb.STORED_FIELD_TEXT]),
        pb.SearchRequest(highlight=pb.HighlightOptions(enabled=True)),
        pb.SearchRequest(top_k=101),
        pb.SearchRequest(top_k=10, offset=95),
    ],
    ids=["stored fields", "highlights", "top_k 101", "offset 95"],
)
def test_a_search_whose_cost_grows_with_its_request_keeps_the_pool(
    served: tuple[SearchServicer, CountingPool], extra: pb.SearchRequest
) -> None:
    """Fetching and highlighting grow with the documents and the hits asked for (a highlight
    of a 1 MB document took 0.28 s on the loop, and every other call waited for it)."""
    servicer, pool = served
    request = pb.SearchRequest()
    request.CopyFrom(SPARSE)
    request.MergeFrom(extra)
    search(servicer, request)
    assert pool.submitted == 1
