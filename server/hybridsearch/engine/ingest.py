"""Live ingestion: encode documents and commit them through the index writer.

Documents are checked first, against `document_rules.IngestLimits` (by the API layer).

``Ingestor`` is synchronous and thread-safe (the writer serialises commits); the API layer
runs it on its own threads, so searches never wait for it: each commit publishes the new
committed state to the searcher before `upsert`/`delete` return.

Compaction (`compact`, or in the background when the `CompactionPolicy` says it is due after a
commit) runs on its own thread too; writes and searches go on meanwhile, and its result is
published like a commit. A background compaction that fails (a full disk) is retried no sooner
than `COMPACTION_RETRY_S` later, so a failing disk is not hammered once per commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import FailedPreconditionError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.storage.builder import dedupe_last_wins, dense_text
from hybridsearch.storage.compaction import CompactionOutcome, CompactionPolicy
from hybridsearch.storage.manifest import Manifest
from hybridsearch.storage.writer import DeleteOutcome, IndexWriter, UpsertOutcome
from hybridsearch.types import Document

log = logging.getLogger(__name__)
COMPACTION_RETRY_S = 60.0


class Ingestor:
    """Upserts and deletes documents of a served index, and publishes each commit to its
    searcher (documents are encoded with the searcher's encoder)."""

    def __init__(
        self,
        writer: IndexWriter,
        searcher: HybridSearcher,
        compaction: CompactionPolicy | None = None,
    ) -> None:
        """``compaction``: when to compact in the background (None: only when asked)."""
        self.writer = writer
        self._searcher = searcher
        self._encoder = searcher.encoder
        self._policy = compaction
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compaction")
        self._background_busy = threading.Lock()
        self._retry_after = 0.0

    @property
    def manifest(self) -> Manifest:
        """The manifest of the last commit."""
        return self.writer.manifest

    @property
    def schema(self) -> CollectionSchema:
        """The index's metadata schema."""
        return self.writer.manifest.schema

    def upsert(
        self, docs: Sequence[Document], *, vectors: NDArray[np.float32] | None = None
    ) -> UpsertOutcome:
        """Encode (when the index has vectors) and commit ``docs`` as one atomic batch.

        A later duplicate id in the batch replaces an earlier one; the outcome counts it as
        replaced. Returns once the batch is durable and visible to searches. ``vectors``: the
        documents' vectors, already encoded (a sharded front encodes; ``docs`` then holds
        unique ids, row-aligned with ``vectors``).
        """
        unique, duplicates = dedupe_last_wins(docs)
        if vectors is not None and len(unique) != len(docs):
            raise ValueError("pre-encoded upserts must hold unique ids")
        if self.writer.manifest.has_vectors and unique and vectors is None:
            if self._encoder is None:
                raise FailedPreconditionError(
                    "this index holds document vectors, but the server was started without a "
                    "model to encode new documents; restart it with --model"
                )
            vectors = self._encoder.encode_documents([dense_text(d) for d in unique])
        outcome = self.writer.upsert(unique, vectors)
        self._publish()
        return UpsertOutcome(
            accepted=outcome.accepted + duplicates,
            replaced=outcome.replaced + duplicates,
            generation=outcome.generation,
        )

    def delete(self, ids: Sequence[str]) -> DeleteOutcome:
        """Delete documents by id, durably; ids that are not live are reported as not found."""
        outcome = self.writer.delete(ids)
        self._publish()
        return outcome

    def compact(self) -> CompactionOutcome:
        """Compact the index now (see `IndexWriter.compact`) and publish the result (an index
        that was already compact is left as it is, still served)."""
        outcome = self.writer.compact()
        if outcome.rewritten:
            self._searcher.publish_index(self.writer.committed())
        return outcome

    def _publish(self) -> None:
        self._searcher.publish_index(self.writer.committed())
        policy = self._policy
        if policy is None or not policy.due(self.writer.manifest):
            return
        if time.monotonic() >= self._retry_after and self._background_busy.acquire(False):
            try:
                self._background.submit(self._compact_in_background)
            except RuntimeError:  # closing: the executor takes no more work
                self._background_busy.release()

    def _compact_in_background(self) -> None:
        try:
            outcome = self.compact()
            log.info(
                "compacted %s: %d dead rows removed, %d -> %d bytes in %.2f s (generation %d)",
                self.writer.path,
                outcome.removed_rows,
                outcome.size_bytes_before,
                outcome.size_bytes_after,
                outcome.seconds,
                outcome.generation,
            )
        except Exception as exc:  # a background task: log, retry later
            self._retry_after = time.monotonic() + COMPACTION_RETRY_S
            log.warning("background compaction of %s failed: %s", self.writer.path, exc)
        finally:
            self._background_busy.release()

    def close(self) -> None:
        """Release the index directory (a running compaction is abandoned, uncommitted)."""
        self.writer.close()
        self._background.shutdown(wait=True, cancel_futures=True)
