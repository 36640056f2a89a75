"""Live followers: a second server on a directory another server writes serves its commits
(and compactions) within the follow interval, read-only, and survives a SIGKILL of the writer
mid-commit by serving the last complete generation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from hybridsearch.storage.manifest import load_manifest
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import ServerProcess, run_cli, start_server, wait_serving
from tests.integration.test_crash_safety import Uploader, check_recovered

FOLLOW_INTERVAL_S = 0.2
SPARSE = pb.RETRIEVAL_MODE_SPARSE
DENSE = pb.RETRIEVAL_MODE_DENSE


def stats(address: str) -> ipb.GetIndexStatsResponse:
    with grpc.insecure_channel(address) as channel:
        response: ipb.GetIndexStatsResponse = index_pb2_grpc.IndexServiceStub(
            channel
        ).GetIndexStats(ipb.GetIndexStatsRequest())
        return response


def within(seconds: float, condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {seconds} s"
        threading.Event().wait(0.02)


def hit_ids(address: str, query: str, mode: int) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        response = search_pb2_grpc.SearchServiceStub(channel).Search(
            pb.SearchRequest(query=query, top_k=1000, mode=mode)
        )
        return [h.id for h in response.hits]


@pytest.fixture
def index_dir(tmp_path: Path, model_dir: Path) -> Path:
    path = tmp_path / "followed"
    run_cli("index", "--empty", "--out", str(path), "--model", str(model_dir), "--no-progress")
    return path


def serve(index_dir: Path, model_dir: Path, *extra: str) -> ServerProcess:
    server = start_server(
        "--index", str(index_dir), "--model", str(model_dir),
        "--follow-interval-s", str(FOLLOW_INTERVAL_S), *extra,
    )  # fmt: skip
    wait_serving(server.address)
    return server


@pytest.fixture
def writer_and_follower(index_dir: Path, model_dir: Path) -> Iterator[tuple[str, str]]:
    writer = serve(index_dir, model_dir)
    try:
        follower = serve(index_dir, model_dir)  # the directory is locked: it follows
        try:
            yield writer.address, follower.address
        finally:
            follower.stop()
    finally:
        writer.stop()


def test_the_follower_serves_each_commit_and_compaction(
    writer_and_follower: tuple[str, str],
) -> None:
    writer, follower = writer_and_follower
    assert stats(writer).writable and not stats(follower).writable
    with grpc.insecure_channel(writer) as channel:
        index = index_pb2_grpc.IndexServiceStub(channel)
        for version in range(3):
            docs = [
                ipb.Document(id=f"d{i}", text=f"uniq{i}v{version} shared river stone")
                for i in range(5)
            ]
            generation = index.UpsertDocuments(
                iter([ipb.UpsertDocumentsRequest(documents=docs)])
            ).generation
            # The interval plus opening time: a generous bound on a shared machine.
            within(5.0, lambda g=generation: stats(follower).generation == g, "the commit")
            assert hit_ids(follower, f"uniq3v{version}", SPARSE) == ["d3"]
            assert sorted(hit_ids(follower, "river", DENSE)) == [f"d{i}" for i in range(5)]
        index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["d0"]))
        compacted = index.Compact(ipb.CompactRequest())
    within(5.0, lambda: stats(follower).generation == compacted.generation, "the compaction")
    served = stats(follower)
    assert (served.deleted_count, served.document_count, served.format_version) == (0, 4, 3)
    assert sorted(hit_ids(follower, "shared", SPARSE)) == [f"d{i}" for i in range(1, 5)]
    assert sorted(hit_ids(follower, "river", DENSE)) == [f"d{i}" for i in range(1, 5)]
    # The follower refuses writes, saying why.
    with grpc.insecure_channel(follower) as channel, pytest.raises(grpc.RpcError) as info:
        index_pb2_grpc.IndexServiceStub(channel).DeleteDocuments(
            ipb.DeleteDocumentsRequest(ids=["d1"])
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "writer lock" in (info.value.details() or "")
    assert "--read-only" not in (info.value.details() or "")


def test_read_only_by_flag_says_so(index_dir: Path, model_dir: Path) -> None:
    server = serve(index_dir, model_dir, "--read-only", "true")
    try:
        with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as info:
            index_pb2_grpc.IndexServiceStub(channel).Compact(ipb.CompactRequest())
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "started with --read-only" in (info.value.details() or "")
    finally:
        server.stop()


def test_sigkill_of_the_writer_mid_commit_never_breaks_the_follower(
    index_dir: Path, model_dir: Path
) -> None:
    writer = serve(index_dir, model_dir)
    follower = serve(index_dir, model_dir)
    try:
        uploader = Uploader(writer.address, seed=7)
        uploader.start()
        assert uploader.in_flight.wait(timeout=120), "the upload never reached the kill point"
        threading.Event().wait(uploader.rng.uniform(0.0, 0.3))
        writer.process.kill()
        uploader.join(timeout=60)
        writer.stop()
        # The follower serves a complete generation: every acknowledged document (once it
        # has caught up with the last commit), each batch whole, both arms in step. The
        # writer is dead, so the manifest on disk names the last commit; the follower is
        # checked once it serves that (a commit the kill interrupted may have landed after
        # the last acknowledgement, and the follower could move to it mid-check).
        final = load_manifest(index_dir).generation
        within(5.0, lambda: stats(follower.address).generation == final, "the last commit")
        acked = set(uploader.acked)
        assert acked <= set(hit_ids(follower.address, "common", SPARSE))
        with grpc.insecure_channel(follower.address) as channel:
            check_recovered_read_only(channel, uploader.acked)
        # A restarted writer's commits reach the same follower.
        writer = serve(index_dir, model_dir)
        with grpc.insecure_channel(writer.address) as channel:
            late = ipb.Document(id="after-restart", text="uniqlate common afterwards")
            index_pb2_grpc.IndexServiceStub(channel).UpsertDocuments(
                iter([ipb.UpsertDocumentsRequest(documents=[late])])
            )
        within(
            5.0,
            lambda: hit_ids(follower.address, "uniqlate", SPARSE) == ["after-restart"],
            "the restarted writer's commit",
        )
    finally:
        follower.stop()
        writer.stop()


def check_recovered_read_only(channel: grpc.Channel, acked: list[str]) -> None:
    """`check_recovered` without its final write (a follower takes none)."""
    try:
        check_recovered(channel, acked, seed=7)
    except grpc.RpcError as exc:  # the write at its end: refused, as a follower must
        assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
