"""Compaction through a live server (the Compact RPC and the background policy), the
`hybridsearch compact` command, and SIGKILL of a compaction at several points of its run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import load_manifest
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document, Query, RetrievalMode
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import run_cli, start_server, wait_serving
from tests.fakes import HASH_ENCODER_INFO, HashEncoder
from tests.integration.in_process import serving_fake_index as serving

SPARSE = pb.RETRIEVAL_MODE_SPARSE
DENSE = pb.RETRIEVAL_MODE_DENSE


def document(i: int, version: int) -> Document:
    return Document(f"d{i}", "", f"uniq{i}v{version} common words of version {version}")


def message(i: int, version: int) -> ipb.Document:
    d = document(i, version)
    return ipb.Document(id=d.id, text=d.text)


def build(path: Path, count: int) -> Path:
    build_index(
        [document(i, 0) for i in range(count)],
        path,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
    )
    return path


def served_ids(search: search_pb2_grpc.SearchServiceStub, mode: int) -> set[str]:
    response = search.Search(pb.SearchRequest(query="common words", top_k=1000, mode=mode))
    return {h.id for h in response.hits}


def test_compact_rpc_reclaims_dead_rows_while_serving(tmp_path: Path) -> None:
    index_dir = build(tmp_path / "idx", 30)
    with (
        serving(index_dir, compact_dead_fraction=0.0) as address,
        grpc.insecure_channel(address) as channel,
    ):
        index = index_pb2_grpc.IndexServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)
        batch = [message(i, 1) for i in range(20)]
        index.UpsertDocuments(iter([ipb.UpsertDocumentsRequest(documents=batch)]))
        index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["d25", "d26"]))
        before = index.GetIndexStats(ipb.GetIndexStatsRequest())
        assert before.deleted_count == 22  # the background policy is off
        response = index.Compact(ipb.CompactRequest())
        assert response.removed_count == 22 and response.document_count == 28
        assert response.generation == before.generation + 1
        assert response.size_bytes_after < response.size_bytes_before
        after = index.GetIndexStats(ipb.GetIndexStatsRequest())
        assert (after.deleted_count, after.document_count) == (0, 28)
        assert (after.generation, after.format_version) == (response.generation, 3)
        expected = {f"d{i}" for i in range(30)} - {"d25", "d26"}
        assert served_ids(search, SPARSE) == served_ids(search, DENSE) == expected
        hits = search.Search(pb.SearchRequest(query="uniq3v1", mode=SPARSE)).hits
        assert [h.id for h in hits] == ["d3"]
        assert index.GetDocument(ipb.GetDocumentRequest(id="d3")).document.text.startswith(
            "uniq3v1"
        )
        # Writes go on in the compacted generation.
        index.UpsertDocuments(iter([ipb.UpsertDocumentsRequest(documents=[message(40, 1)])]))
        assert "d40" in served_ids(search, DENSE)


def test_compact_rpc_of_an_already_compact_index_rewrites_nothing(tmp_path: Path) -> None:
    index_dir = build(tmp_path / "idx", 30)
    with (
        serving(index_dir, compact_dead_fraction=0.0) as address,
        grpc.insecure_channel(address) as channel,
    ):
        index = index_pb2_grpc.IndexServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)
        # A dead row to reclaim (a fresh build may be compact already: one segment when
        # tantivy indexes on one thread).
        index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["d29"]))
        first = index.Compact(ipb.CompactRequest())
        assert first.removed_count == 1
        data_dir = load_manifest(index_dir).data_dir
        second = index.Compact(ipb.CompactRequest())
        assert second.already_compact and not first.already_compact
        assert second.generation == first.generation
        assert (second.removed_count, second.document_count) == (0, 29)
        assert second.size_bytes_before == second.size_bytes_after == first.size_bytes_after
        stats = index.GetIndexStats(ipb.GetIndexStatsRequest())
        assert stats.generation == first.generation
        assert load_manifest(index_dir).data_dir == data_dir
        # A write after it: the next Compact compacts again.
        index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["d3"]))
        third = index.Compact(ipb.CompactRequest())
        assert third.removed_count == 1 and third.generation == first.generation + 2
        assert not third.already_compact
        assert load_manifest(index_dir).data_dir != data_dir
        assert served_ids(search, DENSE) == {f"d{i}" for i in range(30)} - {"d3", "d29"}


def test_the_server_compacts_in_the_background_past_the_dead_fraction(tmp_path: Path) -> None:
    index_dir = build(tmp_path / "idx", 20)
    settings = {"compact_dead_fraction": 0.3, "compact_min_dead_rows": 5}
    with serving(index_dir, **settings) as address, grpc.insecure_channel(address) as channel:
        index = index_pb2_grpc.IndexServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)
        # 4 dead of 24 rows (17 %): not due.
        index.UpsertDocuments(
            iter([ipb.UpsertDocumentsRequest(documents=[message(i, 1) for i in range(4)])])
        )
        assert index.GetIndexStats(ipb.GetIndexStatsRequest()).deleted_count == 4
        # 14 dead of 34 rows (41 %): due; the commit returns, the compaction follows.
        index.UpsertDocuments(
            iter([ipb.UpsertDocumentsRequest(documents=[message(i, 2) for i in range(10)])])
        )
        deadline = time.monotonic() + 30
        while index.GetIndexStats(ipb.GetIndexStatsRequest()).deleted_count != 0:
            assert time.monotonic() < deadline, "no background compaction within 30 s"
            threading.Event().wait(0.05)
        assert (
            served_ids(search, SPARSE) == served_ids(search, DENSE) == {f"d{i}" for i in range(20)}
        )
        assert load_manifest(index_dir).data_dir


def test_compact_command_and_its_refusal_while_a_server_writes(tmp_path: Path) -> None:
    index_dir = build(tmp_path / "idx", 10)
    writer = IndexWriter(index_dir)
    batch = [document(i, 1) for i in range(5)]
    writer.upsert(batch, HashEncoder().encode_documents([d.text for d in batch]))
    writer.close()
    del writer
    server = start_server("--index", str(index_dir))  # no model: writes need none to lock
    try:
        wait_serving(server.address)
        refused = run_cli("compact", str(index_dir), check=False)
        assert refused.returncode == 2
        assert "being written by another process" in refused.stderr
        assert "IndexService.Compact" in refused.stderr
    finally:
        server.stop()
    done = run_cli("compact", str(index_dir))
    assert "removed 5 dead rows" in done.stdout
    assert load_manifest(index_dir).deleted_count == 0
    generation = load_manifest(index_dir).generation
    again = run_cli("compact", str(index_dir))
    assert (
        f"is already compact: 10 rows, all live; nothing rewritten (generation {generation})"
        in (again.stdout)
    )
    assert load_manifest(index_dir).generation == generation


def test_compact_command_on_a_sharded_collection_compacts_each_shard(tmp_path: Path) -> None:
    """It said "no manifest.json; not a hybridsearch index" of a sharded collection."""
    root = tmp_path / "sharded"
    run_cli("shards", "split", "--from-index", str(build(tmp_path / "idx", 10)),
            "--shards", "2", "--out", str(root))  # fmt: skip
    for shard in ("shard-00000", "shard-00001"):  # d3 dies in the shard that holds it
        writer = IndexWriter(root / shard)
        writer.delete(["d3"])
        writer.close()
    dead = {s: load_manifest(root / s).deleted_count for s in ("shard-00000", "shard-00001")}
    assert sorted(dead.values()) == [0, 1]
    done = run_cli("compact", str(root))
    assert f"compacting {root}: a sharded collection of 2 shards, one by one" in done.stdout
    assert done.stdout.count("removed 1 dead rows") == 1
    assert done.stdout.count("compacting ") == 3  # the collection, then each shard
    assert all(load_manifest(root / s).deleted_count == 0 for s in dead)


def churned_index(path: Path, count: int) -> dict[str, int]:
    """An index of ``count`` documents, half replaced and a tenth deleted: id → version."""
    build(path, count)
    writer = IndexWriter(path)
    replaced = [document(i, 1) for i in range(0, count, 2)]
    writer.upsert(replaced, HashEncoder().encode_documents([d.text for d in replaced]))
    deleted = [f"d{i}" for i in range(1, count, 10)]
    writer.delete(deleted)
    writer.close()
    del writer
    state = {f"d{i}": i % 2 == 0 for i in range(count)}
    return {k: int(v) for k, v in state.items() if k not in deleted}


def check_index(path: Path, state: dict[str, int]) -> None:
    """The committed state is exactly ``state`` in both arms (a sample checked in full)."""
    index = open_index(path)
    assert index.manifest.document_count == len(state)
    engine = HybridSearcher(index, HashEncoder())
    try:
        dense = engine.search(Query(text="any", top_k=len(state) + 10, mode=RetrievalMode.DENSE))
        assert sorted(h.id for h in dense.hits) == sorted(state)
        sparse = engine.search(
            Query(text="common", top_k=len(state) + 10, mode=RetrievalMode.SPARSE)
        )
        assert sorted(h.id for h in sparse.hits) == sorted(state)
        for doc_id in list(state)[::37]:
            i, version = int(doc_id[1:]), state[doc_id]
            hits = engine.search(Query(text=f"uniq{i}v{version}", mode=RetrievalMode.SPARSE))
            assert [h.id for h in hits.hits] == [doc_id]
            stored = engine.document(doc_id)
            assert stored is not None
            assert index.vectors is not None
            assert (index.vectors[stored.ordinal] == HashEncoder.vector(stored.text)).all()
    finally:
        engine.close()


def start_compact(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hybridsearch.cli", "compact", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("compacting")  # imports done, work starts
    return process


def finish(process: subprocess.Popen[str]) -> int:
    code = process.wait(timeout=300)
    assert process.stdout is not None
    process.stdout.close()
    return code


@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.75, 0.95])
def test_sigkill_during_compaction_leaves_the_old_or_the_new_generation(
    tmp_path: Path, fraction: float
) -> None:
    base = tmp_path / "base"
    state = churned_index(base, 3000)
    timed = tmp_path / "timed"
    shutil.copytree(base, timed)
    started = time.monotonic()
    assert finish(start_compact(timed)) == 0
    duration = time.monotonic() - started

    victim = tmp_path / "victim"
    shutil.copytree(base, victim)
    process = start_compact(victim)
    threading.Event().wait(fraction * duration)
    process.kill()
    finish(process)
    manifest = load_manifest(victim)
    assert manifest.data_dir in ("", load_manifest(timed).data_dir)  # old or new, whole
    check_index(victim, state)
    # The next writer removes what the killed compaction left, and compacts to the end.
    writer = IndexWriter(victim)
    writer.compact()
    writer.close()
    del writer
    names = {p.name for p in victim.iterdir()}
    assert names == {"manifest.json", "writer.lock", load_manifest(victim).data_dir}
    check_index(victim, state)
