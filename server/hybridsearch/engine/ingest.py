"""Live ingestion: check documents, encode them, commit them through the index writer.

``Ingestor`` is synchronous and thread-safe (the writer serialises commits); the API layer
runs it on its own threads, so searches never wait for it: each commit publishes the new
committed state to the searcher before `upsert`/`delete` return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import FailedPreconditionError
from hybridsearch.storage.builder import dedupe_last_wins, dense_text
from hybridsearch.storage.writer import DeleteOutcome, IndexWriter, UpsertOutcome
from hybridsearch.types import Document

MAX_ID_BYTES = 512


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document refused before indexing: its position in the request stream, id, why."""

    position: int
    id: str
    reason: str


def id_problem(doc_id: str) -> str | None:
    """Why ``doc_id`` cannot be a document id, or None when it can (every RPC taking an id
    checks it, so no id past the limit reaches a lookup or an error message)."""
    if not doc_id.strip():
        return "empty id: a document needs a non-whitespace id"
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        return f"id longer than {MAX_ID_BYTES} bytes"
    if "\x00" in doc_id:
        return "id contains a NUL character"
    return None


def document_problem(doc: Document, *, max_document_chars: int) -> str | None:
    """Why ``doc`` cannot be indexed, or None when it can."""
    problem = id_problem(doc.id)
    if problem is not None:
        return problem
    size = len(doc.title) + len(doc.text)
    if size > max_document_chars:
        return f"title + text is {size} characters; at most {max_document_chars} are accepted"
    return None


class Ingestor:
    """Upserts and deletes documents of a served index, and publishes each commit to its
    searcher (documents are encoded with the searcher's encoder)."""

    def __init__(self, writer: IndexWriter, searcher: HybridSearcher) -> None:
        self.writer = writer
        self._searcher = searcher
        self._encoder = searcher.encoder

    def upsert(self, docs: Sequence[Document]) -> UpsertOutcome:
        """Encode (when the index has vectors) and commit ``docs`` as one atomic batch.

        A later duplicate id in the batch replaces an earlier one; the outcome counts it as
        replaced. Returns once the batch is durable and visible to searches.
        """
        unique, duplicates = dedupe_last_wins(docs)
        vectors = None
        if self.writer.manifest.has_vectors and unique:
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

    def _publish(self) -> None:
        self._searcher.publish_index(self.writer.committed())

    def close(self) -> None:
        """Release the index directory."""
        self.writer.close()
