"""One shard of a sharded collection, served: its arms' candidates, stored fields and writes.

A `ShardWorker` holds one shard's index directory (a complete index of today's format) and
answers the sharded front (`sharding.searcher`): it runs no query encoder (the front encodes
each query once and sends the vector) and no fusion (the front merges each arm over shards,
then fuses). It runs in the front's process (`LocalShardGroup`) or in a Ray actor
(`sharding.ray_group`); everything it takes and returns is plain, picklable data.

BM25 scores use the shard's own term statistics (document frequencies, average length), as
Elasticsearch's default query-then-fetch does: see README "Sharded serving on Ray".

Writes: the worker that holds the shard's writer lock is its writer (`writable`); the other
replicas of the shard follow its commits (`engine.follower`). Upserts arrive with their
vectors (encoded by the front) and are acknowledged once committed, as on one machine.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.base import DenseIndex
from hybridsearch.engine.filtering import search_scope
from hybridsearch.engine.follower import Follower
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.searcher import manifest_dense_index
from hybridsearch.engine.ties import ArmSearch, as_ranked, by_score_then_id, with_ties
from hybridsearch.errors import FailedPreconditionError, IndexLockedError
from hybridsearch.metadata.filter import Filter
from hybridsearch.sparse.tantivy_index import StoredDoc
from hybridsearch.storage.compaction import CompactionOutcome, CompactionPolicy
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.storage.writer import DeleteOutcome, IndexWriter, UpsertOutcome
from hybridsearch.types import Document, RankedList, ScoredDoc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArmsRequest:
    """One query's arms on a shard.

    ``term_weights`` None: no sparse arm; ``vector`` None: no dense arm. ``*_ties``: the arm
    is the ranking (a single-arm query): keep every document tied with the last one and
    order ties by id (`engine.ties`), so the front's merged cut is the unsharded one.
    """

    term_weights: dict[str, float] | None
    sparse_depth: int
    vector: NDArray[np.float32] | None
    dense_depth: int
    filter: Filter | None = None
    sparse_ties: bool = False
    dense_ties: bool = False


@dataclass(frozen=True, slots=True)
class ArmList:
    """One arm's candidates on one shard, best first: shard-local ordinals, ids, raw scores."""

    ordinals: NDArray[np.int64]
    ids: list[str]
    scores: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ShardArms:
    """A shard's answer to one `ArmsRequest` (None: the arm was not asked for)."""

    sparse: ArmList | None
    dense: ArmList | None


@dataclass(frozen=True, slots=True)
class ShardStats:
    """What a shard's served generation holds."""

    generation: int
    document_count: int
    ordinal_count: int
    size_bytes: int
    dense_index: str
    writable: bool


@dataclass(frozen=True, slots=True)
class _Snapshot:
    index: OpenIndex
    dense: DenseIndex | None


class ShardWorker:
    """Serves one shard directory: arms, stored fields, vectors, term statistics, writes."""

    def __init__(
        self,
        path: Path,
        *,
        writable: bool = True,
        follow_interval_s: float = 1.0,
        compaction: CompactionPolicy | None = None,
        ef_search: int = 128,
        exact_filter_fraction: float | None = None,
    ) -> None:
        self.path = path
        self._dense_factory = functools.partial(
            manifest_dense_index, ef_search=ef_search, exact_filter_fraction=exact_filter_fraction
        )
        self._lock = threading.Lock()
        self._ingestor: Ingestor | None = None
        self._follower: Follower | None = None
        writer = None
        if writable:
            try:
                writer = IndexWriter(path)
            except IndexLockedError:
                log.info("shard %s: another replica writes; this one follows", path)
        self._snapshot = self._open(writer.committed() if writer else open_index(path))
        if writer is not None:
            self._ingestor = Ingestor(writer, self, compaction)  # type: ignore[arg-type]
        elif follow_interval_s > 0:
            self._follower = Follower(path, self, follow_interval_s)  # type: ignore[arg-type]

    def _open(self, index: OpenIndex) -> _Snapshot:
        dense = self._dense_factory(index) if index.vectors is not None else None
        return _Snapshot(index, dense)

    # -- what Ingestor and Follower publish to ----------------------------------------------

    @property
    def index(self) -> OpenIndex:
        """The served generation's open index."""
        return self._snapshot.index

    encoder = None  # the front encodes; upserts arrive with their vectors

    def publish_index(self, index: OpenIndex) -> None:
        """Serve a newer committed state (an older or equal one is ignored)."""
        if index.manifest.generation <= self._snapshot.index.manifest.generation:
            return
        snapshot = self._open(index)
        with self._lock:
            if index.manifest.generation > self._snapshot.index.manifest.generation:
                self._snapshot = snapshot

    # -- reads ------------------------------------------------------------------------------

    def arms(self, requests: Sequence[ArmsRequest]) -> list[ShardArms]:
        """Each request's per-arm candidates on this shard (filtered, to each arm's depth)."""
        snap = self._snapshot
        return [self._arms(snap, request) for request in requests]

    def _arms(self, snap: _Snapshot, request: ArmsRequest) -> ShardArms:
        index = snap.index
        # The front checked the filter against the collection's schema (every shard's).
        scope = search_scope(index, index.live, request.filter)
        sparse = dense = None
        if request.term_weights is not None:
            weights = request.term_weights

            def search_sparse(n: int) -> RankedList:
                return index.search_sparse(weights, n, scope.live, scope.sparse_filter)

            sparse = self._listed(index, search_sparse, request.sparse_depth, request.sparse_ties)
        if request.vector is not None:
            if snap.dense is None:
                raise FailedPreconditionError(f"shard {self.path.name} holds no vectors")
            vectors, dense_index = request.vector.reshape(1, -1), snap.dense

            def search_dense(n: int) -> Sequence[ScoredDoc]:
                return dense_index.search(vectors, n, scope.live)[0]

            dense = self._listed(index, search_dense, request.dense_depth, request.dense_ties)
        return ShardArms(sparse, dense)

    @staticmethod
    def _listed(index: OpenIndex, search: ArmSearch, depth: int, ties: bool) -> ArmList:
        if ties:
            hits = by_score_then_id(with_ties(search, depth), index.ids.__getitem__)
        else:
            hits = as_ranked(search(depth))
        ids = [index.ids[o] for o in hits.ordinals.tolist()]
        return ArmList(hits.ordinals, ids, hits.scores)

    def _live_ordinal(self, index: OpenIndex, doc_id: str) -> int | None:
        for ordinal in index.sparse.ordinals_of_id(doc_id, limit=index.stale_sparse + 1):
            if index.is_live(ordinal):
                return ordinal
        return None

    def fetch(self, ids: Sequence[str]) -> dict[str, StoredDoc]:
        """Stored fields of the live documents among ``ids`` (absent ones left out)."""
        index = self._snapshot.index
        ordinals = {doc_id: self._live_ordinal(index, doc_id) for doc_id in ids}
        found = [o for o in ordinals.values() if o is not None]
        stored = index.sparse.fetch(found) if found else {}
        return {
            doc_id: stored[o] for doc_id, o in ordinals.items() if o is not None and o in stored
        }

    def doc_vectors(self, ids: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """The vectors of the live documents among ``ids``."""
        index = self._snapshot.index
        assert index.vectors is not None
        out: dict[str, NDArray[np.float32]] = {}
        for doc_id in ids:
            ordinal = self._live_ordinal(index, doc_id)
            if ordinal is not None:
                out[doc_id] = np.asarray(index.vectors[ordinal], dtype=np.float32)
        return out

    def term_stats(self, terms: Sequence[str]) -> tuple[dict[str, int], int]:
        """Document frequency of each analysed term, and the live document count."""
        sparse = self._snapshot.index.sparse
        return {t: sparse.doc_freq(t) for t in terms}, sparse.num_docs

    def stats(self) -> ShardStats:
        """The served generation's numbers."""
        index = self._snapshot.index
        manifest = index.manifest
        return ShardStats(
            generation=manifest.generation,
            document_count=manifest.document_count,
            ordinal_count=manifest.ordinal_count,
            size_bytes=index.size_bytes,
            dense_index=manifest.dense_index,
            writable=self._ingestor is not None,
        )

    # -- writes -----------------------------------------------------------------------------

    def _writer(self) -> Ingestor:
        if self._ingestor is None:
            raise FailedPreconditionError(
                f"this replica of shard {self.path.name} follows another one's writes"
            )
        return self._ingestor

    def upsert(
        self, docs: Sequence[Document], vectors: NDArray[np.float32] | None
    ) -> UpsertOutcome:
        """Commit ``docs`` (unique ids, with their vectors); returns once durable and served."""
        return self._writer().upsert(docs, vectors=vectors)

    def delete(self, ids: Sequence[str]) -> DeleteOutcome:
        """Delete by ids in one commit."""
        return self._writer().delete(ids)

    def compact(self) -> CompactionOutcome:
        """Compact now and serve the result."""
        return self._writer().compact()

    def close(self) -> None:
        """Stop following and release the shard directory."""
        if self._follower is not None:
            self._follower.close()
        if self._ingestor is not None:
            self._ingestor.close()
