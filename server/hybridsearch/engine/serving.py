"""What the API layer serves of a collection: a searcher and (unless read-only) a writer.

`HybridSearcher` and `Ingestor` serve one index directory; the sharded front
(`sharding.searcher`) serves a sharded collection through the same two interfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.batching import BatchStats
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.storage.compaction import CompactionOutcome
from hybridsearch.storage.manifest import Manifest
from hybridsearch.storage.writer import DeleteOutcome, UpsertOutcome
from hybridsearch.types import Document, Query, SearchResult

if TYPE_CHECKING:
    from hybridsearch.engine.dense_arm import DenseArm


class IndexView(Protocol):
    """A served index's manifest (its last commit) and size."""

    @property
    def manifest(self) -> Manifest:
        """The manifest of the served state."""
        ...

    @property
    def size_bytes(self) -> int:
        """Bytes on disk."""
        ...


class CollectionSearcher(Protocol):
    """Runs queries of one collection."""

    @property
    def index(self) -> IndexView:
        """The served state."""
        ...

    @property
    def encoder(self) -> Encoder | None:
        """The query encoder, when there is one."""
        ...

    def search(self, query: Query) -> SearchResult:
        """Run one query."""
        ...

    def search_batch(self, queries: Sequence[Query]) -> list[SearchResult]:
        """Run several queries."""
        ...

    def search_progressive(
        self, query: Query, on_partial: Callable[[SearchResult], object]
    ) -> SearchResult:
        """Run one query, handing the BM25-only ranking to ``on_partial`` first (hybrid)."""
        ...

    def document(self, doc_id: str) -> StoredDoc | None:
        """A live document's stored fields."""
        ...

    def batch_stats(self) -> BatchStats | None:
        """The query encoder's micro-batching counters."""
        ...

    @property
    def dense_arm(self) -> DenseArm | None:
        """The dense arm encoding its queries (collections of one model share it in a data
        directory), None without an encoder."""
        ...

    def close(self) -> None:
        """Release threads and files."""
        ...


class CollectionWriter(Protocol):
    """Writes of one collection; each call returns once its commit is durable and served."""

    @property
    def manifest(self) -> Manifest:
        """The manifest of the last commit (a sharded collection asks every shard)."""
        ...

    @property
    def schema(self) -> CollectionSchema:
        """The collection's metadata schema (fixed when it was created; no I/O)."""
        ...

    def upsert(self, docs: Sequence[Document]) -> UpsertOutcome:
        """Insert or replace documents."""
        ...

    def delete(self, ids: Sequence[str]) -> DeleteOutcome:
        """Delete documents by id."""
        ...

    def compact(self) -> CompactionOutcome:
        """Compact now."""
        ...

    def close(self) -> None:
        """Release the index directory."""
        ...
