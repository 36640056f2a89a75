"""The dense half of a bulk build: documents encoded in batches of similar token length, on a
background thread while the caller indexes BM25 and writes.

A batch runs padded to its longest document, so the corpus is sorted by token length first
(the model's own count, truncation included) and cut into batches of neighbours: padding, and
with it wasted encoder work, stays near zero. Rows come back in document order. Padding is
masked out of attention and of mean pooling, so a document's vector does not depend on its
batch-mates beyond float noise (bench/index_throughput.py measures the cosine to a build that
batched otherwise).

The encoder's runs release the GIL (onnxruntime), so `BackgroundEncoding` overlaps them with
whatever the building thread does meanwhile: tantivy's indexing and commit, the id map.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from hybridsearch.encoders.base import Encoder

ProgressFn = Callable[[int], object]

# Documents tokenised per call when measuring lengths: bounded memory on large corpora.
LENGTH_CHUNK = 4096


@runtime_checkable
class TokenLengths(Protocol):
    """An encoder that can say how many tokens it sees per document (`OnnxEncoder`)."""

    def document_token_lengths(self, texts: Sequence[str]) -> NDArray[np.int64]:
        """Tokens per document, as the model sees it."""
        ...


def length_order(encoder: Encoder, texts: Sequence[str]) -> NDArray[np.intp]:
    """Document positions sorted by token length (stable; character length for an encoder
    that cannot count tokens)."""
    if isinstance(encoder, TokenLengths):
        lengths = np.concatenate(
            [np.zeros(0, dtype=np.int64)]
            + [
                encoder.document_token_lengths(texts[start : start + LENGTH_CHUNK])
                for start in range(0, len(texts), LENGTH_CHUNK)
            ]
        )
    else:
        lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    return np.argsort(lengths, kind="stable")


class EncodingCancelledError(Exception):
    """The build stopped before the encoding finished (another part of it failed)."""


def encode_by_length(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int,
    on_progress: ProgressFn | None = None,
    cancelled: threading.Event | None = None,
) -> NDArray[np.float32]:
    """Encode ``texts`` into a ``(len(texts), dim)`` float32 matrix, rows in input order,
    batches formed of documents of similar token length."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    matrix = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
    order = length_order(encoder, texts)
    for start in range(0, len(texts), batch_size):
        if cancelled is not None and cancelled.is_set():
            raise EncodingCancelledError("encoding stopped: the build failed")
        rows = order[start : start + batch_size]
        matrix[rows] = encoder.encode_documents([texts[i] for i in rows], batch_size=len(rows))
        if on_progress is not None:
            on_progress(len(rows))
    return matrix


class BackgroundEncoding:
    """`encode_by_length` on its own thread, started at once; `result` waits for the matrix
    (and raises what the encoding raised), `cancel` stops it after the batch in flight."""

    def __init__(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        *,
        batch_size: int,
        on_progress: ProgressFn | None = None,
    ) -> None:
        self._cancelled = threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build-encoder")
        self._future = pool.submit(
            encode_by_length,
            encoder,
            texts,
            batch_size=batch_size,
            on_progress=on_progress,
            cancelled=self._cancelled,
        )
        pool.shutdown(wait=False)  # the thread ends with its one job

    def result(self) -> NDArray[np.float32]:
        """The vectors, rows in input order, once every batch is encoded."""
        return self._future.result()

    def cancel(self) -> None:
        """Stop after the batch in flight and wait for the thread."""
        self._cancelled.set()
        wait([self._future])
