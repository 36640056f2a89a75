"""Sharded serving on a real local Ray (``ray.init(num_cpus=2)``, never mocked): the gRPC
front over shard replicas that are Ray actors. A replica SIGKILLed under load with two
replicas per shard fails no request; with one, the shard's queries fail UNAVAILABLE (or, with
``allow_partial``, answer from the other shard naming the missing one) until Ray has
restarted the replica, and then the server answers fully again by itself. A collection of
one shard is answered by its replica in one call, as one index answers. Writes go to the
owning shard."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

ray = pytest.importorskip("ray")

from hybridsearch.config import ServerSettings  # noqa: E402
from hybridsearch.engine.loader import LoadedIndex  # noqa: E402
from hybridsearch.errors import FailedPreconditionError, SettingsError  # noqa: E402
from hybridsearch.sharding import ray_group  # noqa: E402
from hybridsearch.sharding.build_local import build_sharded  # noqa: E402
from hybridsearch.sharding.group import LocalShardGroup  # noqa: E402
from hybridsearch.sharding.layout import load_shard_manifest, shard_of  # noqa: E402
from hybridsearch.sharding.ray_group import RayShardGroup  # noqa: E402
from hybridsearch.sharding.searcher import ShardedSearcher, ShardedWriter  # noqa: E402
from hybridsearch.types import Document, Query, RetrievalMode  # noqa: E402
from hybridsearch.v1 import collection_pb2 as cpb  # noqa: E402
from hybridsearch.v1 import collection_pb2_grpc, index_pb2_grpc, search_pb2_grpc  # noqa: E402
from hybridsearch.v1 import index_pb2 as ipb  # noqa: E402
from hybridsearch.v1 import search_pb2 as pb  # noqa: E402
from tests.fakes import HASH_ENCODER_INFO, HashEncoder  # noqa: E402
from tests.integration.in_process import in_process_server  # noqa: E402

DOCS = [
    Document(f"d{i}", "", f"laminar flow over plate number {i} wing {i % 7}") for i in range(60)
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    out = tmp_path / "sharded"
    build_sharded(DOCS, out, 2, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO)
    return out


class Served:
    def __init__(self, group: RayShardGroup, address: str, server: Any) -> None:
        self.group = group
        self.server = server  # an InProcessServer (its `scrape`)
        self.channel = grpc.insecure_channel(address)
        self.search = search_pb2_grpc.SearchServiceStub(self.channel)
        self.index = index_pb2_grpc.IndexServiceStub(self.channel)
        self.collections = collection_pb2_grpc.CollectionServiceStub(self.channel)


@pytest.fixture
def serve_on_ray(local_ray: None, sharded: Path) -> Iterator[Callable[..., Served]]:
    """``start(replicas, index=the two-shard collection, transport="direct", write_threads=2)``:
    a server over ``index``, calling its replicas on direct lines (or by Ray tasks)."""
    opened: list[tuple[object, Served]] = []

    def start(
        replicas: int, index: Path = sharded, transport: str = "direct", write_threads: int = 2
    ) -> Served:
        holder: list[RayShardGroup] = []

        def load(settings: ServerSettings) -> LoadedIndex:
            manifest = load_shard_manifest(settings.index)
            group = RayShardGroup(
                settings.index,
                manifest,
                replicas=replicas,
                call_timeout_s=10,
                transport=transport,
            )
            holder.append(group)
            searcher = ShardedSearcher(group, manifest, HashEncoder())
            return LoadedIndex(searcher, ShardedWriter(searcher))

        settings = ServerSettings(index=index, port=0, write_threads=write_threads)
        context = in_process_server(settings, load)
        server = context.__enter__()
        served = Served(holder[0], server.address, server)
        opened.append((context, served))
        return served

    yield start
    for context, served in opened:
        served.channel.close()
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def query(allow_partial: bool = False) -> pb.SearchRequest:
    return pb.SearchRequest(query="laminar flow wing", top_k=60, allow_partial=allow_partial)


def kill_replica(served: Served, shard: int, replica: int = 0) -> int:
    pid = served.group.replica_pids(shard)[replica]
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_killed_replica_fails_no_request_with_two_replicas(
    serve_on_ray: Callable[..., Served],
) -> None:
    served = serve_on_ray(2)
    assert len(served.search.Search(query(), timeout=10).hits) == 60
    failures: list[BaseException] = []
    answered = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                response = served.search.Search(query(), timeout=10)
                assert len(response.hits) == 60 and not response.missing_shards
                answered += 1
            except BaseException as exc:  # every failure counts
                failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    killed = kill_replica(served, 0)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == [] and answered > 20
    within(60, lambda: killed not in served.group.replica_pids(0), "Ray restarts the replica")


def within(seconds: float, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (grpc.RpcError, ray.exceptions.RayError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_one_replica_down_is_unavailable_or_partial_then_recovers(
    serve_on_ray: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read that finds its only replica gone asks Ray where it listens now, and Ray holds
    # the question while it restarts the replica: 0.1 s, so the read gives up before the
    # restart is done (with the default 2 s it is often answered by the restarted replica).
    monkeypatch.setattr(ray_group, "ADDRESS_TIMEOUT_S", 0.1)
    served = serve_on_ray(1)
    full = served.search.Search(query(), timeout=10)
    shard_one = {h.id for h in full.hits if shard_of(h.id, 2) == 1}

    def recovered() -> bool:
        return len(served.search.Search(query(), timeout=10).hits) == 60

    # The calls right after a SIGKILL find the shard's only replica gone (Ray is restarting
    # it).
    kill_replica(served, 0)
    partial = served.search.Search(query(allow_partial=True), timeout=10)
    assert list(partial.missing_shards) == [0]
    assert {h.id for h in partial.hits} == shard_one
    within(60, recovered, "Ray restarts the replica and the server uses it again by itself")
    kill_replica(served, 0)
    with pytest.raises(grpc.RpcError) as caught:
        served.search.Search(query(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "allow_partial" in (caught.value.details() or "")
    within(60, recovered, "recovery after the second kill")
    # The listing still answers, counting the shard that did and naming the other.
    kill_replica(served, 0)
    listed = served.collections.ListCollections(cpb.ListCollectionsRequest(), timeout=10)
    (info,) = listed.collections
    assert list(info.missing_shards) == [0] and info.shard_count == 2
    assert info.document_count == sum(1 for d in DOCS if shard_of(d.id, 2) == 1)
    within(60, recovered, "recovery after the third kill")


def test_the_first_search_after_a_restart_is_answered_with_one_replica(
    serve_on_ray: Callable[..., Served],
) -> None:
    """The front's idle connections to a replica end when it dies; the first search after
    Ray restarted it goes on a new connection to where it now listens."""
    served = serve_on_ray(1)
    for _ in range(3):
        assert len(served.search.Search(query(), timeout=10).hits) == 60
        killed = kill_replica(served, 0)
        within(60, lambda k=killed: k not in served.group.replica_pids(0), "Ray restarts it")
        response = served.search.Search(query(allow_partial=True), timeout=10)
        assert len(response.hits) == 60 and not response.missing_shards


def test_a_hung_replica_is_failed_over_with_two_replicas(
    serve_on_ray: Callable[..., Served],
) -> None:
    """A replica that stops answering (SIGSTOP: a hung process, or a node cut off, no
    connection ends) costs a search its share of the deadline, not the whole of it."""
    served = serve_on_ray(2)
    for _ in range(4):
        assert len(served.search.Search(query(), timeout=10).hits) == 60
    pid = served.group.replica_pids(0)[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(6):
            response = served.search.Search(query(), timeout=3)
            assert len(response.hits) == 60 and not response.missing_shards
    finally:
        os.kill(pid, signal.SIGCONT)
    within(30, lambda: len(served.search.Search(query(), timeout=10).hits) == 60, "serves")


def test_a_write_to_a_hung_shard_holds_its_thread_until_the_callers_deadline_only(
    serve_on_ray: Callable[..., Served],
) -> None:
    """The front's calls to a replica end at the caller's deadline, not at the group's call
    timeout (10 s here): with one write thread, a write to a hung shard that the caller gave
    up on after 2 s leaves the thread free for a write to the other shard."""
    served = serve_on_ray(1, write_threads=1)
    to_hung = next(f"w{i}" for i in range(100) if shard_of(f"w{i}", 2) == 0)
    to_other = next(f"w{i}" for i in range(100) if shard_of(f"w{i}", 2) == 1)

    def upsert(doc_id: str, timeout: float) -> ipb.UpsertDocumentsResponse:
        docs = [ipb.Document(id=doc_id, text="supersonic inlet")]
        return served.index.UpsertDocuments(  # type: ignore[no-any-return]
            iter([ipb.UpsertDocumentsRequest(documents=docs)]), timeout=timeout
        )

    assert upsert(to_hung, 20).accepted_count == 1  # the writer replica is known
    pid = served.group.replica_pids(0)[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            upsert(to_hung, 2)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert upsert(to_other, 5).accepted_count == 1  # before the fix: DEADLINE_EXCEEDED
    finally:
        os.kill(pid, signal.SIGCONT)


def test_writes_go_to_the_owning_shard(serve_on_ray: Callable[..., Served]) -> None:
    served = serve_on_ray(2)
    docs = [ipb.Document(id=f"new-{i}", text=f"supersonic inlet {i}") for i in range(6)]
    response = served.index.UpsertDocuments(
        iter([ipb.UpsertDocumentsRequest(documents=docs)]), timeout=20
    )
    assert response.accepted_count == 6
    for doc in docs:
        shard = shard_of(doc.id, 2)
        stored = served.group.write(shard, "fetch", [doc.id])  # the writer replica has it
        assert doc.id in stored
        got = served.index.GetDocument(ipb.GetDocumentRequest(id=doc.id), timeout=10)
        assert got.document.text == doc.text
    deleted = served.index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["new-0"]), timeout=10)
    assert deleted.deleted_count == 1
    sparse = pb.SearchRequest(query="supersonic inlet", top_k=10, mode=pb.RETRIEVAL_MODE_SPARSE)
    # Searches go to any replica; a follower serves a commit within its follow interval (1 s).
    expected = [f"new-{i}" for i in range(1, 6)]

    def searched() -> bool:
        return sorted(h.id for h in served.search.Search(sparse, timeout=10).hits) == expected

    within(10, searched, "every replica serves the writes")


@pytest.mark.parametrize("transport", ["direct", "ray"])
def test_one_shard_is_answered_by_its_replica_as_one_index(
    serve_on_ray: Callable[..., Served],
    tmp_path: Path,
    transport: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ray_group, "ADDRESS_TIMEOUT_S", 0.1)  # as in the test above
    path = tmp_path / "one"
    build_sharded(DOCS, path, 1, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO)
    served = serve_on_ray(1, path, transport)
    assert served.group.transport == transport
    manifest = load_shard_manifest(path)
    local = ShardedSearcher(LocalShardGroup(path, manifest), manifest, HashEncoder())
    sparse, dense = pb.RETRIEVAL_MODE_SPARSE, pb.RETRIEVAL_MODE_DENSE
    asked = [
        (
            pb.SearchRequest(query="laminar flow wing", top_k=10, explain=True),
            Query("laminar flow wing", top_k=10, explain=True),
        ),
        (
            pb.SearchRequest(query="plate number 7", top_k=5, offset=2, mode=sparse),
            Query("plate number 7", top_k=5, offset=2, mode=RetrievalMode.SPARSE),
        ),
        (
            pb.SearchRequest(query="wing 3", top_k=8, mode=dense),
            Query("wing 3", top_k=8, mode=RetrievalMode.DENSE),
        ),
    ]
    try:
        for request, domain in asked:
            got = served.search.Search(request, timeout=10)
            expected = local.search(domain)
            assert [(h.id, h.rank) for h in got.hits] == [(h.id, h.rank) for h in expected.hits]
            assert [h.score for h in got.hits] == pytest.approx([h.score for h in expected.hits])
            assert got.hits and got.timings.total_us >= got.timings.sparse_us
    finally:
        local.close()
    # Its only replica killed: with allow_partial, no hits and shard 0 named as missing.
    kill_replica(served, 0)
    partial = served.search.Search(query(allow_partial=True), timeout=10)
    assert list(partial.missing_shards) == [0] and not partial.hits
    within(60, lambda: len(served.search.Search(query(), timeout=10).hits) == 60, "recovery")


@pytest.mark.parametrize("transport", ["direct", "ray"])
def test_a_replica_domain_error_is_raised_at_the_front_as_itself(
    serve_on_ray: Callable[..., Served], transport: str
) -> None:
    """A write sent to a follower replica (a read goes to any replica) is refused there with
    FAILED_PRECONDITION; the front raises that error, not a transport failure, and takes
    no replica for dead."""
    served = serve_on_ray(2, transport=transport)
    doc = Document("direct-1", "", "boundary layer transition")
    outcomes: list[str] = []
    for _ in range(2):  # round robin: the writer once, the follower once
        try:
            served.group.call(0, "upsert", [doc], HashEncoder().encode_documents([doc.text]))
            outcomes.append("committed")
        except FailedPreconditionError as exc:
            assert "follows another one's writes" in str(exc)
            outcomes.append("refused")
    assert sorted(outcomes) == ["committed", "refused"]
    assert len(served.search.Search(query(), timeout=10).hits) == 60


class Stopped:
    """A replica SIGSTOPped (hung: its connections stay open, nothing answers) until exit."""

    def __init__(self, served: Served, shard: int, replica: int = 0) -> None:
        self.pid = served.group.replica_pids(shard)[replica]

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.monotonic()
    value = call()
    return time.monotonic() - start, value


def test_allow_partial_answers_before_the_deadline_when_a_shards_replica_hangs(
    serve_on_ray: Callable[..., Served],
) -> None:
    """review4-ray #4: the hung shard is waited for only part of the deadline; the other
    shard's hits come back with the hung one in missing_shards (before: DEADLINE_EXCEEDED)."""
    served = serve_on_ray(1)
    other = {d.id for d in DOCS if shard_of(d.id, 2) == 1}
    assert len(served.search.Search(query(), timeout=10).hits) == 60
    with Stopped(served, 0):
        for timeout in (2.0, 4.0):
            took, response = timed(
                lambda t=timeout: served.search.Search(query(allow_partial=True), timeout=t)
            )
            assert list(response.missing_shards) == [0] and took < timeout
            assert {h.id for h in response.hits} == other
        with pytest.raises(grpc.RpcError) as caught:  # without allow_partial: the deadline
            served.search.Search(query(), timeout=2)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    within(30, lambda: len(served.search.Search(query(), timeout=10).hits) == 60, "serves")


def test_listing_and_metrics_answer_in_time_when_a_shards_replica_hangs(
    serve_on_ray: Callable[..., Served],
) -> None:
    """review4-ray #1 and #2: ListCollections and GetCollection keep to the caller's deadline
    and name the hung shard in missing_shards; a metrics scrape answers within a few seconds
    (before: each waited the group's call timeout and failed)."""
    served = serve_on_ray(1)
    assert "hybridsearch_shards_missing 0.0" in served.server.scrape()
    shard_one = sum(1 for d in DOCS if shard_of(d.id, 2) == 1)
    with Stopped(served, 0):
        took, listed = timed(
            lambda: served.collections.ListCollections(cpb.ListCollectionsRequest(), timeout=3)
        )
        (info,) = listed.collections
        assert took < 3 and list(info.missing_shards) == [0]
        assert info.document_count == shard_one
        took, got = timed(
            lambda: served.collections.GetCollection(cpb.GetCollectionRequest(), timeout=1)
        )
        assert took < 1 and list(got.collection.missing_shards) == [0]
        took, scraped = timed(served.server.scrape)
        assert took < 3
        assert "hybridsearch_shards_missing 1.0" in scraped
        assert f"hybridsearch_index_documents {float(shard_one)}" in scraped
        assert "hybridsearch_rpc" in scraped  # the other metrics too
    within(30, lambda: "hybridsearch_shards_missing 0.0" in served.server.scrape(), "all back")


def test_a_restarting_replica_does_not_stall_reads_while_another_answers(
    serve_on_ray: Callable[..., Served],
) -> None:
    """review4-ray #5: after a SIGKILL, a read that picks the restarting replica once it is
    no longer skipped does not wait for Ray's answer about it (ADDRESS_TIMEOUT_S, 2 s) while
    the shard's other replica can answer."""
    served = serve_on_ray(2)
    for _ in range(4):
        assert len(served.search.Search(query(), timeout=10).hits) == 60
    killed = kill_replica(served, 0)
    slowest = 0.0
    end = time.monotonic() + 4 * ray_group.DOWN_FOR_S
    while time.monotonic() < end:
        took, response = timed(lambda: served.search.Search(query(), timeout=10))
        assert len(response.hits) == 60 and not response.missing_shards
        slowest = max(slowest, took)
        time.sleep(0.05)
    assert slowest < 1.0
    within(60, lambda: killed not in served.group.replica_pids(0), "Ray restarts the replica")


def test_replicas_that_cannot_be_placed_stop_the_start_with_a_message(
    local_ray: None, sharded: Path
) -> None:
    """review4-ray #3: more CPUs per replica than any node has is refused at once on a
    cluster no node joins; replicas that do not all fit fail the start after a bounded wait,
    naming --ray-replica-cpus, --replicas and what the cluster has (before: a wait for ever)."""
    manifest = load_shard_manifest(sharded)
    start = time.monotonic()
    with pytest.raises(SettingsError) as refused:
        RayShardGroup(sharded, manifest, replica_cpus=3, cluster_fixed=True)
    assert time.monotonic() - start < 5
    assert "--ray-replica-cpus" in str(refused.value) and "the largest has 2" in str(refused.value)
    start = time.monotonic()
    with pytest.raises(SettingsError) as late:  # 2 shards x 2 CPUs on a 2-CPU Ray: one fits
        RayShardGroup(sharded, manifest, replica_cpus=2, start_timeout_s=3)
    assert time.monotonic() - start < 20
    message = str(late.value)
    assert "1 of 2 shard replicas" in message and "--ray-replica-cpus" in message
    assert "--replicas" in message and "2 CPUs" in message
    # The placed replica was stopped: its CPUs are free again.
    within(30, lambda: ray.available_resources().get("CPU", 0) == 2, "the CPUs are free")
