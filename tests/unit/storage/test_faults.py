"""Failed writes at the storage layer's write calls: the right domain error, nothing committed,
and the same writer commits again once the fault is gone."""

from __future__ import annotations

import errno
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridsearch.errors import StorageFullError, StorageUnavailableError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sparse.tantivy_index import SparseWriter
from hybridsearch.storage import compaction as compaction_module
from hybridsearch.storage import files as files_module
from hybridsearch.storage import writer as writer_module
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.faults import fault_errno, storage_error
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import load_manifest
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document
from tests.fakes import build_fake_index
from tests.unit.storage.test_writer import crash, dense_ids, sparse_ids, upsert


@pytest.fixture
def index_dir(tmp_path: Path) -> Iterator[Path]:
    yield build_fake_index(
        tmp_path / "idx", [Document("a", "", "alpha apple"), Document("b", "", "bravo banana")]
    )
    gc.collect()


ERRORS = {
    errno.ENOSPC: StorageFullError,
    errno.EDQUOT: StorageFullError,
    errno.EIO: StorageUnavailableError,
    errno.EACCES: StorageUnavailableError,
    errno.EPERM: StorageUnavailableError,
}
# The write calls of a commit, in order (tantivy's own writes fail inside its commit).
WRITE_CALLS = {
    "vector rows": (writer_module, "write_vector_rows"),
    "journal": (writer_module, "write_journal"),
    "tantivy commit": (SparseWriter, "commit"),
    "manifest": (files_module.os, "replace"),
}


def failing(number: int, *, tantivy: bool = False) -> object:
    def fail(*args: object, **kwargs: object) -> None:
        if tantivy:  # how tantivy reports an I/O error: Rust's message in a ValueError
            raise ValueError(f"An IO error occurred: '{os_message(number)} (os error {number})'")
        raise OSError(number, os_message(number))

    return fail


def os_message(number: int) -> str:
    import os

    return os.strerror(number)


@pytest.mark.parametrize("number", list(ERRORS))
@pytest.mark.parametrize("call", list(WRITE_CALLS))
def test_a_failed_write_is_a_domain_error_and_the_writer_recovers(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch, call: str, number: int
) -> None:
    writer = IndexWriter(index_dir)
    before = load_manifest(index_dir)
    target, name = WRITE_CALLS[call]
    monkeypatch.setattr(target, name, failing(number, tantivy=call == "tantivy commit"))
    with pytest.raises(ERRORS[number]) as info:
        upsert(writer, Document("x", "", "xray xigua"))
    monkeypatch.undo()
    assert errno.errorcode[number] in str(info.value)
    assert str(index_dir) not in str(info.value)  # no path reaches a caller
    assert load_manifest(index_dir) == before
    assert sparse_ids(index_dir, "xigua") == []
    # Space is back: the same writer commits, the failed batch never resurfaces.
    upsert(writer, Document("y", "", "yankee yam"))
    assert load_manifest(index_dir).generation > before.generation
    writer.close()
    crash(writer)
    assert sparse_ids(index_dir, "xigua") == []
    assert sparse_ids(index_dir, "yam") == ["y"]
    assert dense_ids(index_dir) == ["a", "b", "y"]


def test_a_delete_that_fails_keeps_the_document(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    monkeypatch.setattr(writer_module, "write_journal", failing(errno.ENOSPC))
    with pytest.raises(StorageFullError):
        writer.delete(["a"])
    monkeypatch.undo()
    assert sparse_ids(index_dir, "apple") == ["a"]
    assert writer.delete(["a"]).deleted == ["a"]
    writer.close()
    crash(writer)
    assert sparse_ids(index_dir, "apple") == []


def test_a_compaction_without_room_leaves_the_index_as_it_was(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    upsert(writer, Document("a", "", "alpha avocado"))
    before = load_manifest(index_dir)
    monkeypatch.setattr(compaction_module, "fsync_file", failing(errno.ENOSPC))
    with pytest.raises(StorageFullError, match="compaction"):
        writer.compact()
    monkeypatch.undo()
    assert load_manifest(index_dir) == before
    assert not list(index_dir.glob("data-*"))
    writer.compact()
    writer.close()
    crash(writer)
    assert load_manifest(index_dir).deleted_count == 0
    assert dense_ids(index_dir) == ["a", "b"]


def test_a_manifest_renamed_in_before_a_failed_directory_fsync_is_taken_not_acknowledged(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    monkeypatch.setattr(files_module, "fsync_dir", failing(errno.EIO))  # after the rename
    with pytest.raises(StorageUnavailableError, match="not known durable"):
        upsert(writer, Document("x", "", "xray xigua"))  # the disk names it, not durably
    monkeypatch.undo()
    on_disk = load_manifest(index_dir)
    assert writer.manifest == on_disk and on_disk.ordinal_count == 3
    # The next commit appends after it (it used to write over x's rows, which the manifest a
    # follower had read still named).
    upsert(writer, Document("y", "", "yankee yam"))
    writer.close()
    crash(writer)
    assert load_manifest(index_dir).ordinal_count == 4
    assert sparse_ids(index_dir, "xigua") == ["x"]
    assert dense_ids(index_dir) == ["a", "b", "x", "y"]


def killed(*args: object) -> None:
    raise ValueError("An index writer was killed.")  # tantivy, after its writer died


def test_a_killed_tantivy_writer_is_reopened_with_the_collection_s_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = CollectionSchema.from_json({"fields": [{"name": "tenant", "type": "keyword"}]})
    index = tmp_path / "idx"
    build_index([Document("a", "", "alpha apple", {"tenant": "t1"})], index, encoder=None,
                schema=schema)  # fmt: skip
    writer = IndexWriter(index)
    monkeypatch.setattr(SparseWriter, "commit", failing(errno.ENOSPC, tantivy=True))
    monkeypatch.setattr(SparseWriter, "rollback", killed)
    with pytest.raises(StorageFullError):  # the commit's own error, not the reopen's
        writer.upsert([Document("x", "", "xray xigua", {"tenant": "t2"})], None)
    monkeypatch.undo()
    writer.upsert([Document("y", "", "yankee yam", {"tenant": "t3"})], None)
    writer.close()
    crash(writer)
    assert sparse_ids(index, "xigua") == []
    assert sparse_ids(index, "yam") == ["y"]
    stored = open_index(index).sparse.fetch_by_id("y")
    assert stored is not None and stored.metadata == {"tenant": "t3"}


def test_a_tantivy_writer_that_cannot_be_reopened_yet_is_reopened_by_the_next_commit(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    monkeypatch.setattr(SparseWriter, "commit", failing(errno.EIO, tantivy=True))
    monkeypatch.setattr(SparseWriter, "rollback", killed)
    monkeypatch.setattr(writer_module, "SparseWriter", failing(errno.EIO))  # the reopen fails
    with pytest.raises(StorageUnavailableError):
        upsert(writer, Document("x", "", "xray xigua"))
    monkeypatch.undo()
    upsert(writer, Document("y", "", "yankee yam"))
    writer.close()
    crash(writer)
    assert sparse_ids(index_dir, "xigua") == []
    assert dense_ids(index_dir) == ["a", "b", "y"]


def test_errno_of_python_and_tantivy_errors() -> None:
    assert fault_errno(OSError(errno.ENOSPC, "x")) == errno.ENOSPC
    assert fault_errno(ValueError("Failed to write (os error 122)")) == errno.EDQUOT
    tantivy = (
        "IoError { io_error: Custom { kind: StorageFull, error: PathError { err: Os { code: 28"
    )
    assert fault_errno(ValueError(tantivy)) == errno.ENOSPC
    assert fault_errno(ValueError("a schema error")) is None
    assert storage_error(OSError(errno.ENOENT, "gone"), "the commit") is None
    assert storage_error(KeyError("x"), "the commit") is None
