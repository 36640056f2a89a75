"""A read-only server following a data directory whose sharded collections run on a real local
Ray (``ray.init(num_cpus=2)``): the writer deletes two sharded collections that calls on the
follower still hold and creates a third; the follower serves the new catalog while those calls
go on (it waited for each deleted collection's calls, up to the drain timeout, before serving
anything new), the calls finish on the deleted collections' shard replicas, and the replicas
stop once the calls end."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from hybridsearch.config import ServerSettings  # noqa: E402
from hybridsearch.engine.data_dir import open_data_dir  # noqa: E402
from hybridsearch.engine.registry import CollectionRegistry, ServedCollection  # noqa: E402
from hybridsearch.harness import descendants  # noqa: E402
from hybridsearch.types import Document, Query, RetrievalMode  # noqa: E402
from tests.integration.test_ray_serve_cli import alive  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

#: Longer than the test: a follower that waited for the held calls would not return.
DRAIN_TIMEOUT_S = 600.0


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def replicas() -> set[int]:
    """The shard replica processes of this test's Ray (its raylet's workers)."""
    found = descendants(os.getpid()).items()
    return {pid for pid, command in found if "ShardReplica" in command and alive(pid)}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def create_written(writer: CollectionRegistry, name: str) -> None:
    writer.create(name, model="", shards=1)
    with writer.use(name) as served:
        served.ingestor().upsert([Document(f"{name}1", "", "a cat on a mat")])


def first_hit(served: ServedCollection) -> str:
    query = Query(text="cat", top_k=5, mode=RetrievalMode.SPARSE)
    return served.searcher.search(query).hits[0].id


def test_the_follower_serves_a_new_collection_while_deleted_ones_drain(
    local_ray: None, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    writer = open_data_dir(data, ServerSettings(ray="auto"))
    reader: CollectionRegistry | None = None
    try:
        for name in ("a", "b"):
            create_written(writer, name)
        writers_replicas = replicas()
        reader = open_data_dir(
            data,
            ServerSettings(read_only=True, ray="auto", follow_interval_s=3600),
            drain_timeout_s=DRAIN_TIMEOUT_S,
        )
        held_replicas = replicas() - writers_replicas
        assert len(held_replicas) == 2, descendants(os.getpid())  # a and b, one shard each
        with reader.use("a") as held_a, reader.use("b") as held_b:
            writer.delete("a")
            writer.delete("b")
            create_written(writer, "c")
            following = threading.Thread(target=reader.follow_catalog, name="follow-once")
            following.start()
            following.join(timeout=120)  # it opens c's replica; the held calls go on
            assert not following.is_alive(), "the follower waited for the deleted collections"
            assert sorted(s.name for s in reader.served()) == ["c", "default"]
            with reader.use("c") as created:
                assert first_hit(created) == "c1"
            assert held_a.retired and held_b.retired
            # The calls holding them finish on their replicas, which are still running.
            assert (first_hit(held_a), first_hit(held_b)) == ("a1", "b1")
            assert held_replicas <= replicas()
        wait_for("the deleted collections' replicas stop", lambda: not held_replicas & replicas())
    finally:
        if reader is not None:
            reader.close()
        writer.close()
