"""A full disk and a read-only disk under a live server, on a real size-limited filesystem:
writes fail with RESOURCE_EXHAUSTED / UNAVAILABLE, nothing unacknowledged shows, searches go
on, and writes work again once space is freed (or the disk writable) without a restart.

The test mounts its own tmpfs (needs root and mount permission: skipped, saying so, where
that is not allowed) and unmounts it afterwards.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.errors import StorageFullError, StorageUnavailableError
from hybridsearch.storage import writer as writer_module
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.faults import fault_errno, storage_error
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.fakes import HashEncoder, build_fake_index
from tests.integration.in_process import serving_fake_index as serving
from tests.integration.test_compaction_api import document

SIZE_MIB = 16


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs", str(mount_point)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        pytest.skip(f"cannot run mount ({exc}): a size-limited filesystem needs it")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        size = 1 << 20
        while size >= 512:
            try:
                os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                size //= 2
    finally:
        os.close(fd)
    return filler


def upsert(index: index_pb2_grpc.IndexServiceStub, i: int, version: int) -> None:
    d = document(i, version)
    text = d.text + " padding" * 2000  # a document that needs room on disk
    index.UpsertDocuments(
        iter([ipb.UpsertDocumentsRequest(documents=[ipb.Document(id=d.id, text=text)])])
    )


def ids(search: search_pb2_grpc.SearchServiceStub, query: str, mode: int) -> list[str]:
    response = search.Search(pb.SearchRequest(query=query, top_k=100, mode=mode))
    return sorted(h.id for h in response.hits)


def test_a_full_then_freed_disk(small_disk: Path) -> None:
    index_dir = build_fake_index(small_disk / "idx", [document(i, 0) for i in range(10)])
    with (
        serving(index_dir, compact_dead_fraction=0.0) as address,
        grpc.insecure_channel(address) as channel,
    ):
        index = index_pb2_grpc.IndexServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)
        upsert(index, 1, 1)
        before = index.GetIndexStats(ipb.GetIndexStatsRequest())
        filler = fill(small_disk)
        for attempt in range(3):  # repeated failures leave the writer usable too
            with pytest.raises(grpc.RpcError) as info:
                upsert(index, 20 + attempt, 1)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
            assert "disk is full" in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            index.Compact(ipb.CompactRequest())
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Searches go on, on the last commit; nothing of the failed writes shows.
        assert index.GetIndexStats(ipb.GetIndexStatsRequest()).generation == before.generation
        expected = [f"d{i}" for i in range(10)]
        assert ids(search, "common", pb.RETRIEVAL_MODE_SPARSE) == expected
        assert ids(search, "common", pb.RETRIEVAL_MODE_DENSE) == expected
        assert ids(search, "uniq1v1", pb.RETRIEVAL_MODE_SPARSE) == ["d1"]
        # Space freed: writes work again, same server.
        filler.unlink()
        upsert(index, 30, 1)
        assert ids(search, "uniq30v1", pb.RETRIEVAL_MODE_SPARSE) == ["d30"]
        assert ids(search, "uniq20v1 uniq21v1 uniq22v1", pb.RETRIEVAL_MODE_SPARSE) == []
        assert "d30" in ids(search, "common", pb.RETRIEVAL_MODE_DENSE)
        assert index.Compact(ipb.CompactRequest()).document_count == 11


@pytest.mark.parametrize("number", [errno.EIO, errno.EACCES])
def test_an_io_or_permission_error_is_unavailable_until_it_clears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int
) -> None:
    """(A read-only remount of the test's tmpfs is refused while the writer holds files open
    for writing, so the fault is injected at the journal write.)"""
    index_dir = build_fake_index(tmp_path / "idx", [document(i, 0) for i in range(10)])
    with serving(index_dir) as address, grpc.insecure_channel(address) as channel:
        index = index_pb2_grpc.IndexServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)

        def broken(*args: object) -> int:
            raise OSError(number, os.strerror(number))

        monkeypatch.setattr(writer_module, "write_journal", broken)
        with pytest.raises(grpc.RpcError) as info:
            upsert(index, 1, 1)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        assert errno.errorcode[number] in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["d1"]))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert ids(search, "uniq1v0", pb.RETRIEVAL_MODE_SPARSE) == ["d1"]
        monkeypatch.undo()
        upsert(index, 1, 1)
        assert ids(search, "uniq1v1", pb.RETRIEVAL_MODE_SPARSE) == ["d1"]
        assert ids(search, "uniq1v0", pb.RETRIEVAL_MODE_SPARSE) == []


class WideEncoder:
    """Random 1,024-dimensional vectors: a vector file much larger than the text."""

    model_id = "wide-test"
    dimension = 1024
    provider = "CPUExecutionProvider"

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> NDArray[np.float32]:
        rng = np.random.default_rng(len(texts))
        return rng.normal(size=(len(texts), self.dimension)).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.encode_documents(texts)


COMPACT = """
import sys
from pathlib import Path
from hybridsearch.storage.writer import IndexWriter
writer = IndexWriter(Path(sys.argv[1]))
try:
    writer.compact()
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
"""


def test_a_compaction_on_a_full_disk_fails_cleanly_not_with_sigbus(small_disk: Path) -> None:
    """The new generation's vector file is written through a file: a disk that cannot hold it
    raises ENOSPC (a disk-full error, nothing committed); through a writable memory map the
    kernel killed the process with SIGBUS."""
    path = small_disk / "idx"
    info = EncoderInfo(WideEncoder.model_id, WideEncoder.dimension, "mean", True, 128)
    build_index([document(i, 0) for i in range(400)], path, encoder=WideEncoder(),
                encoder_info=info)  # fmt: skip
    writer = IndexWriter(path)
    writer.delete([f"d{i}" for i in range(200)])  # 200 live rows: ~800 KB of vectors to copy
    writer.close()
    fill(small_disk)
    (small_disk / "filler").unlink()
    leave = 256 * 1024
    with (small_disk / "filler").open("wb") as handle:  # all but `leave` bytes taken
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        handle.write(b"\0" * max(0, free - leave))
    done = subprocess.run(
        [sys.executable, "-c", COMPACT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    assert "disk is full" in done.stdout
    (small_disk / "filler").unlink()
    writer = IndexWriter(path)
    try:
        assert writer.compact().documents == 200
    finally:
        writer.close()


def test_every_write_on_a_full_disk_is_disk_full_even_when_tantivy_lost_the_errno(
    small_disk: Path,
) -> None:
    """tantivy's indexing thread dies on ENOSPC and later writes say only "index writer was
    killed": each is still a disk-full error (read from the free space), never an internal
    one; once space is freed the same writer commits again."""
    path = build_fake_index(small_disk / "idx", [document(i, 0) for i in range(10)])
    writer = IndexWriter(path)
    try:
        filler = fill(small_disk)
        for attempt in range(12):
            docs = [document(100 * attempt + k, 1) for k in range(10)]
            batch = [Document(d.id, d.title, d.text + " padding" * 500, d.metadata) for d in docs]
            with pytest.raises(StorageFullError, match="disk is full"):
                writer.upsert(batch, HashEncoder().encode_documents([d.text for d in batch]))
        filler.unlink()
        writer.upsert([Document("ok", "", "fine")], HashEncoder().encode_documents(["fine"]))
    finally:
        writer.close()


def test_faiss_and_killed_writer_messages_are_storage_faults(tmp_path: Path) -> None:
    faiss = RuntimeError(
        "Error in void faiss::write_index(...): 'ret == (size * 4)' failed: write error in "
        "/x/.dense.hnsw.faiss.tmp: 6214 != 125952 (No space left on device)"
    )
    assert fault_errno(faiss) == errno.ENOSPC
    killed = ValueError("An error occurred in a thread: 'An index writer was killed.. A worker")
    assert fault_errno(killed) is None  # no directory to look at: not a known fault
    assert fault_errno(killed, tmp_path) == errno.EIO  # a disk with room: storage refused
    assert isinstance(storage_error(killed, "the commit", tmp_path), StorageUnavailableError)
