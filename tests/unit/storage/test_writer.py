"""IndexWriter: live commits, and recovery from a crash at each step of a commit.

A "crash" is an exception injected at one step of a commit; the writer is then dropped
without any clean-up (as a killed process would be) and the directory reopened.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import IndexLockedError
from hybridsearch.storage import writer as writer_module
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import Manifest, load_manifest
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document, Query, RetrievalMode
from tests.fakes import HASH_ENCODER_INFO, HashEncoder


@pytest.fixture
def index_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "idx"
    build_index(
        [Document("a", "", "alpha apple"), Document("b", "", "bravo banana")],
        path,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
    )
    yield path
    gc.collect()


def vectors_of(docs: Sequence[Document]) -> NDArray[np.float32]:
    return HashEncoder().encode_documents([d.text for d in docs])


def upsert(writer: IndexWriter, *docs: Document) -> None:
    writer.upsert(list(docs), vectors_of(docs))


def sparse_ids(path: Path, text: str) -> list[str]:
    engine = HybridSearcher(open_index(path), HashEncoder())
    try:
        result = engine.search(Query(text=text, top_k=50, mode=RetrievalMode.SPARSE))
        return [h.id for h in result.hits]
    finally:
        engine.close()


def dense_ids(path: Path) -> list[str]:
    engine = HybridSearcher(open_index(path), HashEncoder())
    try:
        result = engine.search(Query(text="anything", top_k=50, mode=RetrievalMode.DENSE))
        return sorted(h.id for h in result.hits)
    finally:
        engine.close()


def crash(writer: IndexWriter) -> None:
    """Drop the writer as a killed process would: no commit, no clean-up, lock released.

    (A traceback may still reference the writer, so its tantivy writer and its writer lock,
    which the kernel would release with the process, are dropped explicitly.)
    """
    writer._sparse_writer._writer = None  # type: ignore[assignment]
    writer._dir_lock.release()
    gc.collect()


def test_commits_persist_and_reopen(index_dir: Path) -> None:
    writer = IndexWriter(index_dir)
    upsert(writer, Document("c", "", "charlie cherry"))
    upsert(writer, Document("a", "", "alpha avocado"))  # replaces a
    outcome = writer.delete(["b", "zzz"])
    assert (outcome.deleted, outcome.not_found) == (["b"], ["zzz"])
    writer.close()
    crash(writer)
    manifest = load_manifest(index_dir)
    assert (manifest.document_count, manifest.ordinal_count, manifest.generation) == (2, 4, 3)
    assert manifest.format_version == 2
    assert sparse_ids(index_dir, "apple") == []
    assert sparse_ids(index_dir, "avocado") == ["a"]
    assert sparse_ids(index_dir, "banana") == []
    assert dense_ids(index_dir) == ["a", "c"]
    engine = HybridSearcher(open_index(index_dir), HashEncoder())
    assert engine.document("a").text == "alpha avocado"  # type: ignore[union-attr]
    assert engine.document("b") is None
    engine.close()


@pytest.mark.parametrize(
    "step",
    ["write_vector_rows", "write_journal", "manifest"],
)
def test_crash_before_the_manifest_keeps_the_last_commit(
    index_dir: Path, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    upsert(writer, Document("a", "", "alpha avocado"))  # committed replacement of a
    before = load_manifest(index_dir)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(f"crash at {step}")

    if step == "manifest":
        monkeypatch.setattr(Manifest, "save", boom)
    else:
        monkeypatch.setattr(writer_module, step, boom)
    with pytest.raises(OSError, match="crash"):
        # replaces a again and adds d: neither may show, and a's committed version must stay
        upsert(writer, Document("a", "", "alpha apricot"), Document("d", "", "delta date"))
    monkeypatch.undo()
    crash(writer)

    assert load_manifest(index_dir) == before
    assert sparse_ids(index_dir, "apricot date") == []
    assert sparse_ids(index_dir, "avocado") == ["a"]
    assert dense_ids(index_dir) == ["a", "b"]
    engine = HybridSearcher(open_index(index_dir), HashEncoder())
    assert engine.document("d") is None
    assert engine.document("a").text == "alpha avocado"  # type: ignore[union-attr]
    engine.close()

    # A new writer reuses the uncommitted ordinals; the crash's leftovers never resurface.
    writer = IndexWriter(index_dir)
    upsert(writer, Document("e", "", "echo elderberry"), Document("f", "", "foxtrot fig"))
    writer.close()
    crash(writer)
    assert sparse_ids(index_dir, "apricot date") == []
    assert sparse_ids(index_dir, "elderberry fig") in (["e", "f"], ["f", "e"])
    assert dense_ids(index_dir) == ["a", "b", "e", "f"]
    assert load_manifest(index_dir).ordinal_count == 5


def test_failed_commit_in_a_live_writer_is_rolled_back(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IndexWriter(index_dir)
    monkeypatch.setattr(writer_module, "write_journal", lambda *a: (_ for _ in ()).throw(OSError()))
    with pytest.raises(OSError):
        upsert(writer, Document("x", "", "xray xigua"))
    monkeypatch.undo()
    upsert(writer, Document("y", "", "yankee yam"))  # the failed batch's queue is gone
    writer.close()
    crash(writer)
    assert sparse_ids(index_dir, "xigua") == []
    assert sparse_ids(index_dir, "yam") == ["y"]
    assert dense_ids(index_dir) == ["a", "b", "y"]


def test_sparse_arm_returns_depth_live_hits_despite_dead_ones(index_dir: Path) -> None:
    writer = IndexWriter(index_dir)
    for round_ in range(3):  # every version mentions "shared"; older ones die
        upsert(writer, *[Document(f"s{i}", "", f"shared v{round_}") for i in range(6)])
    committed = writer.committed()
    # tantivy deleted the first round; the second dies at the next commit (filtered till then)
    assert committed.sparse.num_docs == 2 + 12
    assert committed.stale_sparse == 6
    engine = HybridSearcher(committed, HashEncoder())
    result = engine.search(Query(text="shared", top_k=5, mode=RetrievalMode.SPARSE))
    assert len(result.hits) == 5
    assert len({h.id for h in result.hits}) == 5
    assert all(engine.document(f"s{i}").text == "shared v2" for i in range(6))  # type: ignore[union-attr]
    engine.close()
    writer.close()


def test_a_second_writer_is_refused_with_a_clear_error(index_dir: Path) -> None:
    writer = IndexWriter(index_dir)
    with pytest.raises(IndexLockedError, match="another process"):
        IndexWriter(index_dir)
    writer.close()
    crash(writer)


def test_a_format_1_index_opens_and_takes_writes(index_dir: Path) -> None:
    manifest_path = index_dir / "manifest.json"
    obj = json.loads(manifest_path.read_text())
    for key in ("generation", "committed_at", "journal_bytes"):
        del obj[key]
    obj["format_version"] = 1  # as written before live ingestion existed
    manifest_path.write_text(json.dumps(obj))
    assert load_manifest(index_dir).committed_at == obj["created_at"]
    assert sparse_ids(index_dir, "apple") == ["a"]
    writer = IndexWriter(index_dir)
    upsert(writer, Document("c", "", "charlie cherry"))
    writer.close()
    crash(writer)
    manifest = load_manifest(index_dir)
    assert (manifest.format_version, manifest.generation, manifest.document_count) == (2, 1, 3)
    assert dense_ids(index_dir) == ["a", "b", "c"]


@pytest.mark.parametrize("compacted", [False, True])
def test_temp_files_a_crash_left_are_removed_when_the_writer_opens(
    index_dir: Path, compacted: bool
) -> None:
    if compacted:  # the data in data-<generation>/, not beside the manifest
        writer = IndexWriter(index_dir)
        writer.delete(["a"])
        writer.compact()
        writer.close()
        crash(writer)
    data = load_manifest(index_dir).data_path(index_dir)
    before = sorted(p.name for p in data.iterdir())
    # What a process killed between mkstemp and rename leaves (files.write_bytes_atomic,
    # dense.store.write_vectors).
    (index_dir / ".manifest.json.k2j4x_1a.tmp").write_text("{")
    (data / ".vectors.npy.0q9zt3ee.tmp").write_bytes(b"\x93NUMPY")
    writer = IndexWriter(index_dir)
    writer.close()
    crash(writer)
    assert not list(index_dir.rglob("*.tmp"))
    assert sorted(p.name for p in data.iterdir()) == before
    assert dense_ids(index_dir) == (["b"] if compacted else ["a", "b"])
