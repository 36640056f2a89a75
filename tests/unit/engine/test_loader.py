"""load_index: read-only or writable, a locked directory served read-only with a warning, and
the model cases that need no ONNX model (fake indexes; a fake encoder's id is no default)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.engine.batching import BatchingSettings
from hybridsearch.engine.loader import (
    LoadedIndex,
    batching_settings,
    load_index,
    resolve_model_dir,
)
from hybridsearch.errors import FailedPreconditionError, IndexFormatError, IndexLockedError
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document, Query, RetrievalMode
from tests.fakes import HASH_ENCODER_INFO, build_fake_index

DOCS = [Document("a", "", "alpha apple"), Document("b", "", "bravo banana")]
LOADER_LOG = "hybridsearch.engine.loader"


@contextmanager
def loaded(settings: ServerSettings) -> Iterator[LoadedIndex]:
    index = load_index(settings)
    try:
        yield index
    finally:
        index.close()


def sparse_ids(index: LoadedIndex, text: str) -> list[str]:
    result = index.searcher.search(Query(text=text, mode=RetrievalMode.SPARSE))
    return [hit.id for hit in result.hits]


@pytest.fixture
def bm25_index(tmp_path: Path) -> Path:
    return build_fake_index(tmp_path / "bm25", DOCS, dense=False)


@pytest.fixture
def vector_index(tmp_path: Path) -> Path:
    return build_fake_index(tmp_path / "vectors", DOCS)


def test_writable_by_default_and_holds_the_writer_lock(bm25_index: Path) -> None:
    with loaded(ServerSettings(index=bm25_index)) as index:
        assert index.ingestor is not None
        assert sparse_ids(index, "apple") == ["a"]
        with pytest.raises(IndexLockedError):
            IndexWriter(bm25_index)
    IndexWriter(bm25_index).close()  # close released it


def test_read_only_serves_without_an_ingestor_or_the_lock(bm25_index: Path) -> None:
    with loaded(ServerSettings(index=bm25_index, read_only=True)) as index:
        assert index.ingestor is None
        assert sparse_ids(index, "banana") == ["b"]
        IndexWriter(bm25_index).close()  # the directory stays free for a writer


def test_a_locked_directory_is_served_read_only_with_a_warning(
    bm25_index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = IndexWriter(bm25_index)  # e.g. another server process
    try:
        with (
            caplog.at_level(logging.WARNING, logger=LOADER_LOG),
            loaded(ServerSettings(index=bm25_index)) as index,
        ):
            assert index.ingestor is None
            assert sparse_ids(index, "apple") == ["a"]
    finally:
        writer.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("serving read-only" in message for message in warnings), warnings


def test_a_model_for_an_index_without_vectors_is_refused(bm25_index: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="no vectors"):
        load_index(ServerSettings(index=bm25_index, model=tmp_path / "some-model"))
    IndexWriter(bm25_index).close()  # the failed load let go of the directory


def test_vectors_without_a_model_serve_sparse_only_with_a_warning(
    vector_index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger=LOADER_LOG),
        loaded(ServerSettings(index=vector_index)) as index,
    ):
        assert index.searcher.encoder is None
        assert sparse_ids(index, "apple") == ["a"]
        with pytest.raises(FailedPreconditionError, match="--model"):
            index.searcher.search(Query(text="apple", mode=RetrievalMode.DENSE))
    assert any("only SPARSE is served" in r.getMessage() for r in caplog.records)


def test_a_missing_index_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError):
        load_index(ServerSettings(index=tmp_path / "missing", read_only=True))


def test_resolve_model_dir_needs_no_model_when_none_is_needed(tmp_path: Path) -> None:
    given = tmp_path / "model"
    assert resolve_model_dir(given, HASH_ENCODER_INFO) == given
    assert resolve_model_dir(given, None) == given
    assert resolve_model_dir(None, None) is None  # no vectors: no model
    assert resolve_model_dir(None, HASH_ENCODER_INFO) is None  # not the default model


def test_batching_settings_follow_the_server_settings() -> None:
    assert batching_settings(ServerSettings(encode_batching=False)) is None
    settings = ServerSettings(
        max_batch_size=4, max_wait_us=50, max_batch_tokens=256, encode_queue=9
    )
    assert batching_settings(settings) == BatchingSettings(
        max_batch_size=4, max_wait_us=50, max_batch_tokens=256, max_queue=9
    )
