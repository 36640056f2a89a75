"""One shard of a sharded collection, served: its arms' candidates, stored fields and writes.

A `ShardWorker` holds one shard's index directory (a complete index of today's format) and
answers the sharded front (`sharding.searcher`): it runs no query encoder (the front encodes
each query once and sends the vector) and no fusion (the front merges each arm over shards,
then fuses), except as the only shard of a collection served elsewhere (`search`: it then
finishes each query as one index does). It runs in the front's process (`LocalShardGroup`)
or in a Ray actor (`sharding.ray_group`); everything it takes and returns is plain,
picklable data.

BM25 scores use the collection's idf when the front sends the collection's statistics of
the query's terms (`ArmsRequest.collection_stats`, the default), else the shard's own term
statistics, as Elasticsearch's default query-then-fetch does; length normalisation is the
shard's own either way: see README "Serving on Ray".

Writes: the worker that holds the shard's writer lock is its writer (`writable`); the other
replicas of the shard follow its commits (`engine.follower`). Upserts arrive with their
vectors (encoded by the front) and are acknowledged once committed, as on one machine.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.base import DenseIndex
from hybridsearch.engine.filtering import SearchScope, search_scope
from hybridsearch.engine.follower import Follower
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.ranking import dense_depth, finish_result, sparse_depth
from hybridsearch.engine.searcher import index_result_source, manifest_dense_index
from hybridsearch.engine.ties import ArmSearch, by_score_then_id, cut_by_id, with_ties
from hybridsearch.errors import FailedPreconditionError, IndexLockedError, UnavailableError
from hybridsearch.metadata.filter import Filter
from hybridsearch.prf.pipeline import FirstRound
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.storage.compaction import CompactionOutcome, CompactionPolicy
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.storage.writer import DeleteOutcome, IndexWriter, UpsertOutcome
from hybridsearch.types import (
    Document,
    Query,
    RankedList,
    ScoredDoc,
    SearchResult,
    StageTimings,
    elapsed_us,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectionStats:
    """Collection-wide BM25 statistics of a query's terms (summed over shards)."""

    doc_freq: dict[str, int]
    num_docs: int


@dataclass(frozen=True, slots=True)
class TermStats:
    """One shard's statistics of some terms, as of its served ``generation``."""

    generation: int
    doc_freq: dict[str, int]
    num_docs: int


@dataclass(frozen=True, slots=True)
class ArmsRequest:
    """One query's arms on a shard.

    ``term_weights`` None: no sparse arm; ``vector`` None: no dense arm. ``*_ties``: the arm
    is the ranking (a single-arm query): keep every document tied with the last one and
    order ties by id (`engine.ties`), so the front's merged cut is the unsharded one; without,
    a tie at the arm's cut is taken by id (`engine.ties.cut_by_id`), for the same reason.
    ``stored_depth`` > 0: also return the stored fields of each arm's best ``stored_depth``
    candidates (the page's end: what the front's page can need, in the same round trip).
    ``collection_stats``: score BM25 with the collection's idf (the shard turns each term's
    weight from its own idf to the collection's); the answer then carries the shard's own
    statistics of the terms and its generation, so the front can keep its cache current.
    ``vector_of`` (in this process only, with ``vector`` None): the query vector, once the
    front has encoded it; the shard runs its BM25 arm first, so BM25 runs while the query is
    encoded, as on one index.
    """

    term_weights: dict[str, float] | None
    sparse_depth: int
    vector: NDArray[np.float32] | None
    dense_depth: int
    filter: Filter | None = None
    sparse_ties: bool = False
    dense_ties: bool = False
    stored_depth: int = 0
    collection_stats: CollectionStats | None = None
    vector_of: Callable[[], NDArray[np.float32]] | None = None

    def query_vector(self) -> NDArray[np.float32] | None:
        """The dense arm's query vector (waits for the encoder with ``vector_of``)."""
        if self.vector is not None:
            return self.vector
        return self.vector_of() if self.vector_of is not None else None


#: Separates the ids of a packed `ArmList` (see `ArmList.__reduce__`).
_ID_SEPARATOR = "\x00"


@dataclass(frozen=True, slots=True)
class ArmList:
    """One arm's candidates on one shard, best first: shard-local ordinals, ids, raw scores.

    Pickled (a Ray reply) compactly: ordinals as int32, scores as float32 when that loses
    nothing (both arms score in float32), and the ids as one string, so a list of 1,000
    candidates is three buffers and one string instead of 1,000 string objects.
    """

    ordinals: NDArray[np.int64]
    ids: list[str]
    scores: NDArray[np.float64]

    def __reduce__(self) -> tuple[object, ...]:
        ordinals: NDArray[np.integer] = self.ordinals
        if len(ordinals) and int(ordinals.max()) < 2**31:
            ordinals = ordinals.astype(np.int32)
        scores: NDArray[np.floating] = self.scores
        narrow = scores.astype(np.float32)
        if np.array_equal(narrow, scores):
            scores = narrow
        packed: str | list[str] = _ID_SEPARATOR.join(self.ids)
        if packed.count(_ID_SEPARATOR) != max(len(self.ids) - 1, 0):
            packed = self.ids  # an id holds the separator: send the list as it is
        return (_unpacked_arm, (ordinals, packed, len(self.ids), scores))


def _unpacked_arm(
    ordinals: NDArray[np.integer], ids: str | list[str], count: int, scores: NDArray[np.floating]
) -> ArmList:
    if isinstance(ids, str):
        ids = ids.split(_ID_SEPARATOR) if count else []
    return ArmList(
        ordinals.astype(np.int64, copy=False), ids, scores.astype(np.float64, copy=False)
    )


@dataclass(frozen=True, slots=True)
class ShardArms:
    """A shard's answer to one `ArmsRequest` (None: the arm was not asked for).

    ``stored``: stored fields of the candidates asked for by ``stored_depth``, by id.
    ``term_stats``: with ``collection_stats``, the shard's own statistics of the terms.
    """

    sparse: ArmList | None
    dense: ArmList | None
    stored: dict[str, StoredDoc] = field(default_factory=dict)
    term_stats: TermStats | None = None


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


def bm25_idf(doc_freq: int, docs: int) -> float:
    """tantivy's BM25 idf of a term in ``doc_freq`` of ``docs`` documents."""
    return math.log(1.0 + (docs - doc_freq + 0.5) / (doc_freq + 0.5))


def collection_weights(
    weights: dict[str, float], own: TermStats, collection: CollectionStats
) -> dict[str, float]:
    """``weights`` with each term's factor that turns the shard's BM25 idf (``own``) into the
    collection's; a term the shard lacks (or the collection's statistics lack) keeps its
    weight. Length normalisation stays the shard's own."""
    out = {}
    for term, weight in weights.items():
        n = own.doc_freq.get(term, 0)
        total = collection.doc_freq.get(term)
        factor = 1.0
        if n > 0 and total is not None:
            factor = bm25_idf(total, collection.num_docs) / bm25_idf(n, own.num_docs)
        out[term] = weight * factor
    return out


@dataclass(frozen=True, slots=True)
class _RankedArms:
    """One request's arms on a shard, ranked (shard-local ordinals), and what ran them."""

    scope: SearchScope
    sparse: RankedList | None
    dense: RankedList | None
    term_stats: TermStats | None
    sparse_us: int
    dense_us: int


def _ranked(index: OpenIndex, search: ArmSearch, depth: int, ties: bool) -> RankedList:
    """An arm's list to ``depth``; with ``ties`` (the arm is the ranking) every document tied
    with the last one kept and ties ordered by id, else a tie at the cut taken by id
    (`engine.ties`): the front merges shards' lists by (score, id), so its cut is then the
    unsharded one whichever shard stores which tied document."""
    if ties:
        return by_score_then_id(with_ties(search, depth), index.ids.__getitem__)
    return cut_by_id(search, depth, index.ids.__getitem__)


def _with_ids(index: OpenIndex, hits: RankedList) -> ArmList:
    ids = list(map(index.ids.__getitem__, hits.ordinals.tolist()))
    return ArmList(hits.ordinals, ids, hits.scores)


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
        self._closed = False
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

    def search(self, queries: Sequence[tuple[Query, ArmsRequest]]) -> list[SearchResult]:
        """Each query answered by this shard alone, as one index answers it: its arms, then
        fusion (or PRF), the page and its hits (`engine.ranking.finish_result`).

        The front of a collection of one shard held in another process (a Ray actor) asks
        this instead of `arms`: with one shard there is nothing to merge, so one round trip
        brings back the page rather than two candidate lists and their ids. Timings: the
        shard's arms and fusion; the front adds its encoding and the total.
        """
        snap = self._snapshot
        return [self._search(snap, query, request) for query, request in queries]

    def _search(self, snap: _Snapshot, query: Query, request: ArmsRequest) -> SearchResult:
        started = time.perf_counter()
        ranked = self._ranked(snap, request)
        first = FirstRound(
            ranked.sparse, ranked.dense, request.vector, sparse_depth(query), dense_depth(query)
        )
        timings = StageTimings(sparse_us=ranked.sparse_us, dense_us=ranked.dense_us)
        source = index_result_source(snap.index, snap.dense, ranked.scope)
        return finish_result(source, query, first, timings=timings, started=started)

    def _arms(self, snap: _Snapshot, request: ArmsRequest) -> ShardArms:
        ranked = self._ranked(snap, request)
        index = snap.index
        sparse = _with_ids(index, ranked.sparse) if ranked.sparse is not None else None
        dense = _with_ids(index, ranked.dense) if ranked.dense is not None else None
        stored = self._stored(index, (sparse, dense), request.stored_depth)
        return ShardArms(sparse, dense, stored, ranked.term_stats)

    def _ranked(self, snap: _Snapshot, request: ArmsRequest) -> _RankedArms:
        index = snap.index
        # The front checked the filter against the collection's schema (every shard's).
        scope = search_scope(index, index.live, request.filter)
        sparse = dense = None
        term_stats = None
        sparse_us = dense_us = 0
        if request.term_weights is not None:
            started = time.perf_counter()
            weights = request.term_weights
            if request.collection_stats is not None:
                term_stats = self._term_stats(index, list(weights))
                weights = collection_weights(weights, term_stats, request.collection_stats)

            def search_sparse(n: int) -> RankedList:
                return index.search_sparse(weights, n, scope.live, scope.sparse_filter)

            sparse = _ranked(index, search_sparse, request.sparse_depth, request.sparse_ties)
            sparse_us = elapsed_us(started)
        if request.vector is not None or request.vector_of is not None:
            if snap.dense is None:
                raise FailedPreconditionError(f"shard {self.path.name} holds no vectors")
            vector = request.query_vector()
            assert vector is not None
            started = time.perf_counter()
            vectors, dense_index = vector.reshape(1, -1), snap.dense

            def search_dense(n: int) -> Sequence[ScoredDoc]:
                return dense_index.search(vectors, n, scope.live)[0]

            dense = _ranked(index, search_dense, request.dense_depth, request.dense_ties)
            dense_us = elapsed_us(started)
        return _RankedArms(scope, sparse, dense, term_stats, sparse_us, dense_us)

    @staticmethod
    def _stored(
        index: OpenIndex, lists: Sequence[ArmList | None], depth: int
    ) -> dict[str, StoredDoc]:
        """Stored fields of each list's best ``depth`` candidates (deduplicated), by id."""
        if depth <= 0:
            return {}
        ordinals: dict[int, str] = {}
        for arm in lists:
            if arm is not None:
                ordinals.update(zip(arm.ordinals[:depth].tolist(), arm.ids[:depth], strict=True))
        if not ordinals:
            return {}
        stored = index.sparse.fetch(list(ordinals))
        return {doc_id: stored[o] for o, doc_id in ordinals.items() if o in stored}

    @staticmethod
    def _term_stats(index: OpenIndex, terms: Sequence[str]) -> TermStats:
        sparse = index.sparse
        return TermStats(
            index.manifest.generation, {t: sparse.doc_freq(t) for t in terms}, sparse.num_docs
        )

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

    def term_stats_at(self, terms: Sequence[str]) -> TermStats:
        """Document frequency of each analysed term and the live document count, with the
        served generation they are of."""
        return self._term_stats(self._snapshot.index, terms)

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
        if self._closed:
            raise UnavailableError(f"shard {self.path.name} is closed")
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
        # Each refers back to this worker: without them the shard's tantivy reader and writer
        # (and their threads) go when the worker does, not when the cyclic GC next runs.
        self._follower = self._ingestor = None
        self._closed = True
