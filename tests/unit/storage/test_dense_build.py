"""The dense half of a bulk build: batches by token length, rows in input order, and the
encoder running on its own thread while BM25 indexes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.storage.builder import build_index
from hybridsearch.storage.dense_build import (
    BackgroundEncoding,
    EncodingCancelledError,
    encode_by_length,
    length_order,
)
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Document
from tests.fakes import HASH_ENCODER_INFO, HashEncoder


class CountingEncoder(HashEncoder):
    """A `HashEncoder` that counts tokens as words and records every batch it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def document_token_lengths(self, texts: Sequence[str]) -> NDArray[np.int64]:
        return np.array([len(t.split()) for t in texts], dtype=np.int64)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> NDArray[np.float32]:
        self.batches.append(list(texts))
        return super().encode_documents(texts)


# Word counts and character lengths disagree: "a b c d" has 4 words in 7 characters.
TEXTS = ["a b c d", "longwordnumberone", "x y", "p q r s t u", "single", "m n o"]


def test_batches_are_neighbours_by_token_length_and_rows_keep_input_order() -> None:
    encoder = CountingEncoder()
    matrix = encode_by_length(encoder, TEXTS, batch_size=2)
    np.testing.assert_array_equal(matrix, np.stack([HashEncoder.vector(t) for t in TEXTS]))
    assert encoder.batches == [
        ["longwordnumberone", "single"],  # 1 word each
        ["x y", "m n o"],  # 2, 3
        ["a b c d", "p q r s t u"],  # 4, 6
    ]


def test_length_order_falls_back_to_characters_for_an_encoder_that_cannot_count() -> None:
    order = length_order(HashEncoder(), TEXTS)
    assert [TEXTS[i] for i in order][:2] == ["x y", "m n o"]
    assert list(length_order(CountingEncoder(), TEXTS)) == [1, 4, 2, 5, 0, 3]


def test_encoding_errors_reach_the_waiting_thread() -> None:
    class Broken(HashEncoder):
        def encode_documents(
            self, texts: Sequence[str], batch_size: int | None = None
        ) -> NDArray[np.float32]:
            raise RuntimeError("model went away")

    with pytest.raises(RuntimeError, match="model went away"):
        BackgroundEncoding(Broken(), TEXTS, batch_size=2).result()


def test_cancel_stops_before_the_next_batch() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[int] = []

    class Slow(HashEncoder):
        def encode_documents(
            self, texts: Sequence[str], batch_size: int | None = None
        ) -> NDArray[np.float32]:
            seen.append(len(texts))
            started.set()
            release.wait(timeout=10)
            return super().encode_documents(texts)

    encoding = BackgroundEncoding(Slow(), TEXTS, batch_size=1)
    assert started.wait(timeout=10)  # the first batch is in flight (cancelling earlier runs none)
    threading.Timer(0.2, release.set).start()
    encoding.cancel()
    assert len(seen) == 1
    with pytest.raises(EncodingCancelledError):
        encoding.result()


def docs() -> list[Document]:
    return [Document(f"d{i}", "", text) for i, text in enumerate(TEXTS)]


def test_the_build_encodes_while_bm25_indexes(tmp_path: Path) -> None:
    # BM25's first document waits for the encoder's first batch: a build that encoded only
    # after indexing BM25 would time out here.
    encoded = threading.Event()

    class Signalling(HashEncoder):
        def encode_documents(
            self, texts: Sequence[str], batch_size: int | None = None
        ) -> NDArray[np.float32]:
            encoded.set()
            return super().encode_documents(texts)

    def on_sparse(_: int) -> None:
        assert encoded.wait(timeout=10), "the encoder did not run while BM25 indexed"

    summary = build_index(
        docs(), tmp_path / "idx", encoder=Signalling(), encoder_info=HASH_ENCODER_INFO,
        batch_size=2, on_sparse_progress=on_sparse,
    )  # fmt: skip
    assert summary.documents == len(TEXTS)
    index = open_index(tmp_path / "idx")
    assert index.vectors is not None
    np.testing.assert_array_equal(
        index.vectors[:], np.stack([HashEncoder.vector(t) for t in TEXTS])
    )


def test_a_failed_bm25_half_stops_the_encoder_and_leaves_nothing(tmp_path: Path) -> None:
    def on_sparse(_: int) -> None:
        raise RuntimeError("disk full")

    encoder = CountingEncoder()
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(docs(), tmp_path / "idx", encoder=encoder, encoder_info=HASH_ENCODER_INFO,
                    batch_size=1, on_sparse_progress=on_sparse)  # fmt: skip
    assert list(tmp_path.iterdir()) == []
