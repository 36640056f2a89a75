"""An index directory whose BM25 side (``sparse/``) is lost or damaged is refused when opened,
read-only or for writing, naming the path; nothing is created in its place. A healthy index
after replacements, deletes, a compaction and an unfinished commit still opens.

Each case damages a copy of a real index built by ``hybridsearch index``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hybridsearch.errors import IndexFormatError
from hybridsearch.sparse.tantivy_index import SparseWriter
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import SPARSE_DIR, load_manifest
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document

TINY_DOCUMENTS = 12  # tests/fixtures/tiny_corpus.jsonl


def escaped(path: Path) -> str:
    """``path`` as a regular expression that matches it literally."""
    return re.escape(str(path))


def open_read_only(path: Path) -> None:
    open_index(path)


def open_for_writing(path: Path) -> None:
    IndexWriter(path).close()


OPENERS = pytest.mark.parametrize(
    "opener", [open_read_only, open_for_writing], ids=["read-only", "writer"]
)


@pytest.fixture
def index_copy(tiny_sparse_index: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_sparse_index, copy)
    return copy


@OPENERS
def test_a_lost_sparse_dir_is_refused_and_not_created(
    index_copy: Path, opener: Callable[[Path], None]
) -> None:
    shutil.rmtree(index_copy / SPARSE_DIR)
    with pytest.raises(
        IndexFormatError, match=f"^no BM25 index at {escaped(index_copy / SPARSE_DIR)} "
    ):
        opener(index_copy)
    assert not (index_copy / SPARSE_DIR).exists()


@OPENERS
def test_a_sparse_dir_without_its_meta_file_is_refused_and_left_alone(
    index_copy: Path, opener: Callable[[Path], None]
) -> None:
    (index_copy / SPARSE_DIR / "meta.json").unlink()
    with pytest.raises(IndexFormatError, match=r"no BM25 index at .*meta\.json is missing"):
        opener(index_copy)
    assert not (index_copy / SPARSE_DIR / "meta.json").exists()


@OPENERS
def test_an_empty_tantivy_index_in_place_of_the_lost_one_is_refused(
    index_copy: Path, opener: Callable[[Path], None]
) -> None:
    """What a server of an earlier version left when it opened an index without ``sparse/``."""
    shutil.rmtree(index_copy / SPARSE_DIR)
    empty = SparseWriter(index_copy / SPARSE_DIR, create=True)
    empty.commit()
    empty.close()
    with pytest.raises(
        IndexFormatError,
        match=f"BM25 index at {escaped(index_copy / SPARSE_DIR)} holds 0 documents, "
        f"fewer than the {TINY_DOCUMENTS} the manifest names",
    ):
        opener(index_copy)


@OPENERS
def test_a_lost_segment_file_is_refused(index_copy: Path, opener: Callable[[Path], None]) -> None:
    lost = sorted((index_copy / SPARSE_DIR).glob("*.idx"))
    assert lost
    for path in lost:
        path.unlink()
    with pytest.raises(
        IndexFormatError, match=f"cannot open the BM25 index at {escaped(index_copy)}"
    ):
        opener(index_copy)


def test_replacements_deletes_compaction_and_an_unfinished_commit_still_open(
    index_copy: Path,
) -> None:
    """tantivy may hold more than the manifest's live documents (dead ones not yet deleted,
    an unfinished commit's): only fewer is damage."""
    writer = IndexWriter(index_copy)
    try:
        ids = writer.committed().ids
        writer.upsert([Document(ids[0], "", "replaced text")], None)  # the old one stays dead
        writer.delete([ids[1]])
        assert writer.committed().manifest.document_count == TINY_DOCUMENTS - 1
        assert writer.compact().rewritten
        writer.delete([ids[2]])  # a dead document tantivy still holds
    finally:
        writer.close()
    manifest = load_manifest(index_copy)
    leftover = SparseWriter(manifest.data_path(index_copy) / SPARSE_DIR, create=False)
    leftover.add(manifest.ordinal_count, Document("crashed", "", "never committed"))
    leftover.commit()  # as a commit killed before its manifest was written leaves it
    leftover.close()
    assert open_index(index_copy).manifest.document_count == TINY_DOCUMENTS - 2
    IndexWriter(index_copy).close()
