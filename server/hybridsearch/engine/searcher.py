"""The search engine: one query in, both arms concurrently, fused ranked hits out.

``HybridSearcher`` is synchronous and thread-safe for searches; the API layer runs it in a
thread pool. In hybrid mode the calling thread starts the dense arm (query encoding + inner
product; micro-batched with other requests' when batching is on, see `DenseArm`), runs the
sparse arm (tantivy BM25) meanwhile, then waits for the dense lists; both release the GIL.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.base import DenseIndex
from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.dense.select import open_dense_index, parse_dense_index
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.batching import BatchingSettings, BatchStats
from hybridsearch.engine.dense_arm import DenseArm, DenseArmResult, DenseJob
from hybridsearch.engine.filtering import SearchScope, search_scope
from hybridsearch.engine.prf_backend import IndexPrfBackend
from hybridsearch.engine.ranking import ResultSource, finish_result
from hybridsearch.engine.ranking import dense_depth as _dense_depth
from hybridsearch.engine.ranking import sparse_depth as _sparse_depth
from hybridsearch.engine.ties import by_score_then_id, cut_by_id, with_ties
from hybridsearch.errors import (
    FailedPreconditionError,
    IndexFormatError,
    InvalidArgumentError,
)
from hybridsearch.fusion.adaptive import QueryStats
from hybridsearch.prf.pipeline import FirstRound
from hybridsearch.sparse.analysis import query_term_counts
from hybridsearch.sparse.base import SparseBackend, StoredDoc
from hybridsearch.storage.index_dir import OpenIndex
from hybridsearch.types import (
    Query,
    RankedList,
    RetrievalMode,
    ScoredDoc,
    SearchResult,
    StageTimings,
    elapsed_us,
)


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """One consistent view of the index: a search reads every part from the same snapshot.

    ``live[i]`` False hides ordinal ``i`` from both arms (a replaced or deleted document);
    None means every row is live.
    """

    index: OpenIndex
    dense: DenseIndex | None
    live: NDArray[np.bool_] | None = None


DenseFactory = Callable[[OpenIndex], DenseIndex]


def manifest_dense_index(
    index: OpenIndex, *, ef_search: int = 128, exact_filter_fraction: float | None = None
) -> DenseIndex:
    """The dense index the manifest names (exact unless built with ``--dense-index hnsw``)."""
    assert index.vectors is not None
    kind = parse_dense_index(index.manifest.dense_index)
    return open_dense_index(
        index.data_path,
        kind,
        index.vectors,
        ef_search=ef_search,
        exact_filter_fraction=exact_filter_fraction,
    )


class HybridSearcher:
    """Runs queries against one open index (and the encoder its vectors were built with)."""

    def __init__(
        self,
        index: OpenIndex,
        encoder: Encoder | None,
        *,
        batching: BatchingSettings | None = None,
        arm_threads: int = 4,
        dense_factory: DenseFactory | None = None,
        dense_arm: DenseArm | None = None,
    ) -> None:
        """``batching``: micro-batch concurrent queries' dense arms (None: each runs alone on
        one of ``arm_threads`` threads).

        ``dense_arm``: a dense arm over ``encoder`` shared with other searchers (collections
        of one model share one encoder and one micro-batcher); its owner closes it, not
        `close`. None: this searcher makes and owns its own.
        """
        self._encoder = encoder
        self._dense_factory = dense_factory or manifest_dense_index
        self._snapshot = self.make_snapshot(index)
        self._publish_lock = threading.Lock()
        self._owns_dense_arm = dense_arm is None
        if dense_arm is None and encoder is not None:
            dense_arm = DenseArm(encoder, batching, threads=arm_threads)
        self._dense_arm = dense_arm if encoder is not None else None

    def make_snapshot(
        self, index: OpenIndex, live: NDArray[np.bool_] | None = None
    ) -> IndexSnapshot:
        """A snapshot of ``index`` with the dense index this searcher uses over its vectors.

        ``live`` defaults to the index's own live mask.
        """
        dense: DenseIndex | None = None
        if index.vectors is not None and self._encoder is not None:
            _check_encoder_matches(index, self._encoder)
            dense = self._dense_factory(index)
            earlier: IndexSnapshot | None = getattr(self, "_snapshot", None)
            if (
                isinstance(dense, ExactDenseIndex)
                and earlier is not None
                and isinstance(earlier.dense, ExactDenseIndex)
                # The same vectors file, rows only appended (a compaction writes a new data
                # directory; an index rebuilt at the path has another creation time).
                and earlier.index.data_path == index.data_path
                and earlier.index.manifest.created_at == index.manifest.created_at
            ):
                dense.carry_norms(earlier.dense)
        return IndexSnapshot(index=index, dense=dense, live=index.live if live is None else live)

    def publish_index(self, index: OpenIndex) -> None:
        """Make a newly committed index state the one new searches read.

        Searches in flight keep their snapshot. A state no newer than the published one (two
        writers' publications crossing, or a call that committed nothing) is ignored: the
        served generation never goes back.
        """
        generation = index.manifest.generation
        if generation <= self._snapshot.index.manifest.generation:
            return
        snapshot = self.make_snapshot(index)
        with self._publish_lock:
            if generation > self._snapshot.index.manifest.generation:
                self._snapshot = snapshot

    @property
    def index(self) -> OpenIndex:
        """The open index of the current snapshot."""
        return self._snapshot.index

    @property
    def encoder(self) -> Encoder | None:
        """The query encoder, when the index has vectors and one is loaded."""
        return self._encoder

    @property
    def dense_arm(self) -> DenseArm | None:
        """The dense arm encoding its queries (shared when given to the constructor)."""
        return self._dense_arm

    def batch_stats(self) -> BatchStats | None:
        """Micro-batching counters of the dense arm (None without batching or encoder)."""
        return self._dense_arm.stats() if self._dense_arm is not None else None

    def close(self) -> None:
        """Stop the dense arm's threads (its batcher or pool), unless it is shared."""
        if self._dense_arm is not None and self._owns_dense_arm:
            self._dense_arm.close()

    def search(self, query: Query) -> SearchResult:
        """Run one query."""
        return self._search_many([query], field_prefixes=[""])[0]

    def search_progressive(
        self, query: Query, on_partial: Callable[[SearchResult], object]
    ) -> SearchResult:
        """Run one query; in hybrid mode, hand the BM25-only ranking to ``on_partial`` first.

        The partial result is the sparse arm's top ``top_k`` (applied mode SPARSE), computed
        while the dense arm is still encoding; the return value is the fused result. Other
        modes run as `search` and never call ``on_partial``.
        """
        if query.mode is not RetrievalMode.HYBRID:
            return self.search(query)
        started = time.perf_counter()
        snap = self._snapshot
        self._check_mode(snap, query.mode)
        scope = search_scope(snap.index, snap.live, query.filter)
        dense_future = self._start_dense(snap, [query], scope)
        try:
            arm_started = time.perf_counter()
            sparse_list = self._sparse_arm(snap, query, scope)
            sparse_us = elapsed_us(arm_started)
            partial_query = dataclasses.replace(query, mode=RetrievalMode.SPARSE)
            partial_first = FirstRound(
                sparse_list,
                None,
                None,
                sparse_depth=_sparse_depth(query),
                dense_depth=_dense_depth(query),
            )
            on_partial(
                self._finish(
                    snap,
                    scope,
                    partial_query,
                    partial_first,
                    timings=StageTimings(sparse_us=sparse_us),
                    started=started,
                )
            )
        except BaseException:
            dense_future.cancel()
            raise
        dense_result = dense_future.result()
        timings = StageTimings(
            sparse_us=sparse_us,
            encode_us=dense_result.encode_us[0],
            dense_us=dense_result.dense_us[0],
        )
        dense_list = self._dense_cut(
            snap, scope, query, dense_result.lists[0], dense_result.vectors[0]
        )
        first = FirstRound(
            sparse_list,
            dense_list,
            dense_result.vectors[0],
            sparse_depth=_sparse_depth(query),
            dense_depth=_dense_depth(query),
        )
        return self._finish(snap, scope, query, first, timings=timings, started=started)

    def document(self, doc_id: str) -> StoredDoc | None:
        """The stored fields of the live document with this external id, if any."""
        snap = self._snapshot
        index = snap.index
        for ordinal in index.sparse.ordinals_of_id(doc_id, limit=index.stale_sparse + 1):
            if snap.index.is_live(ordinal, snap.live):
                return index.sparse.fetch([ordinal]).get(ordinal)
        return None

    def search_batch(self, queries: Sequence[Query]) -> list[SearchResult]:
        """Run several queries; their dense arms share one encoder run and one dense search
        (one per distinct filter). A filter's violations name ``requests[i].filter…``."""
        return self._search_many(queries, [f"requests[{i}]." for i in range(len(queries))])

    def _search_many(
        self, queries: Sequence[Query], field_prefixes: Sequence[str]
    ) -> list[SearchResult]:
        started = time.perf_counter()
        snap = self._snapshot
        for query in queries:
            self._check_mode(snap, query.mode)
        scopes = self._scopes(snap, queries, field_prefixes)
        # One dense job per scope: unfiltered queries share the snapshot's (the batcher still
        # encodes every job's texts in one run).
        groups: dict[int, list[int]] = {}
        for i, query in enumerate(queries):
            if query.mode is not RetrievalMode.SPARSE:
                groups.setdefault(id(scopes[i]), []).append(i)
        dense_futures: list[tuple[Future[DenseArmResult], list[int]]] = []
        try:
            for members in groups.values():
                future = self._start_dense(snap, [queries[i] for i in members], scopes[members[0]])
                dense_futures.append((future, members))
        except BaseException:
            _cancel(dense_futures)
            raise
        sparse_lists: list[Sequence[ScoredDoc] | None] = []
        sparse_times: list[int] = []
        try:
            for query, scope in zip(queries, scopes, strict=True):
                arm_started = time.perf_counter()
                if query.mode is RetrievalMode.DENSE:
                    sparse_lists.append(None)
                else:
                    sparse_lists.append(self._sparse_arm(snap, query, scope))
                sparse_times.append(elapsed_us(arm_started))
        except BaseException:
            _cancel(dense_futures)  # their batch may not have started: drop it
            raise
        dense_of: dict[int, tuple[Sequence[ScoredDoc], NDArray[np.float32], int, int]] = {}
        for future, members in dense_futures:
            group_result = future.result()
            for j, i in enumerate(members):
                dense_of[i] = (
                    group_result.lists[j],
                    group_result.vectors[j],
                    group_result.encode_us[j],
                    group_result.dense_us[j],
                )
        results = []
        for i, (query, sparse_list, sparse_us) in enumerate(
            zip(queries, sparse_lists, sparse_times, strict=True)
        ):
            scope = scopes[i]
            dense_list: Sequence[ScoredDoc] | None = None
            query_vector: NDArray[np.float32] | None = None
            encode_us = dense_us = 0
            if i in dense_of:
                dense_list, query_vector, encode_us, dense_us = dense_of[i]
            if dense_list is not None:
                assert query_vector is not None
                dense_list = self._dense_cut(snap, scope, query, dense_list, query_vector)
            timings = StageTimings(
                sparse_us=sparse_us if sparse_list is not None else 0,
                encode_us=encode_us,  # the run that served this query (`DenseArmResult`)
                dense_us=dense_us,
            )
            first = FirstRound(
                sparse_list,
                dense_list,
                query_vector,
                sparse_depth=_sparse_depth(query),
                dense_depth=_dense_depth(query),
            )
            results.append(
                self._finish(snap, scope, query, first, timings=timings, started=started)
            )
        return results

    @staticmethod
    def _scopes(
        snap: IndexSnapshot, queries: Sequence[Query], field_prefixes: Sequence[str]
    ) -> list[SearchScope]:
        """Each query's scope (one shared by the unfiltered); every filter's violations."""
        unfiltered = SearchScope(snap.live)
        scopes: list[SearchScope] = []
        errors: list[InvalidArgumentError] = []
        for query, prefix in zip(queries, field_prefixes, strict=True):
            try:
                scopes.append(
                    search_scope(snap.index, snap.live, query.filter, field_prefix=prefix)
                    if query.filter is not None
                    else unfiltered
                )
            except InvalidArgumentError as exc:
                errors.append(exc)
        if errors:
            raise InvalidArgumentError.merged(errors)
        return scopes

    def _check_mode(self, snap: IndexSnapshot, mode: RetrievalMode) -> None:
        if mode is RetrievalMode.SPARSE or snap.dense is not None:
            return
        if snap.index.vectors is None:
            raise FailedPreconditionError(
                f"mode {mode.name} needs document vectors, but this collection has none (it is "
                "BM25-only: created without a model, or built with --no-dense); use mode SPARSE"
            )
        raise FailedPreconditionError(
            f"mode {mode.name} needs the query encoder, but the server was started without "
            "a model; restart it with --model or use mode SPARSE"
        )

    def _sparse_arm(
        self, snap: IndexSnapshot, query: Query, scope: SearchScope
    ) -> Sequence[ScoredDoc]:
        if snap.index.sparse_backend is SparseBackend.LUCENE:
            return self._lucene_arm(snap, query, scope)
        weights = {term: float(n) for term, n in query_term_counts(query.text).items()}
        depth = _sparse_depth(query)
        index, live, sparse_filter = snap.index, scope.live, scope.sparse_filter

        def search(n: int) -> RankedList:
            return index.search_sparse(weights, n, live, sparse_filter)

        if query.mode is not RetrievalMode.SPARSE:
            # Which tied documents at the fusion depth's cut enter fusion: by id (ties.py).
            return cut_by_id(search, depth, snap.index.ids.__getitem__)
        hits = with_ties(search, depth)
        # Alone, the arm's list is the ranking: cut it the same at every depth (see ties.py).
        return by_score_then_id(hits, snap.index.ids.__getitem__)

    def _lucene_arm(
        self, snap: IndexSnapshot, query: Query, scope: SearchScope
    ) -> Sequence[ScoredDoc]:
        """The sparse arm of a Lucene-backed index: Anserini analyses the query text."""
        depth = _sparse_depth(query)
        index, live, text = snap.index, scope.live, query.text

        def search(n: int) -> RankedList:
            return index.search_sparse_text(text, n, live)

        if query.mode is not RetrievalMode.SPARSE:
            return cut_by_id(search, depth, snap.index.ids.__getitem__)
        return by_score_then_id(with_ties(search, depth), snap.index.ids.__getitem__)

    def _dense_cut(
        self,
        snap: IndexSnapshot,
        scope: SearchScope,
        query: Query,
        probe: Sequence[ScoredDoc],
        query_vector: NDArray[np.float32],
    ) -> Sequence[ScoredDoc]:
        """The dense arm's list from its probe (fetched one deeper, see `_start_dense`): in
        dense mode the ranking, cut as `ties` says; in hybrid mode the fusion depth's best,
        a tie at the cut taken by id (`cut_by_id`). Either widens only for a tie at the cut."""
        dense = snap.dense
        assert dense is not None
        vector = query_vector.reshape(1, -1)

        def search(n: int) -> Sequence[ScoredDoc]:
            return dense.search(vector, n, scope.live)[0]

        doc_id = snap.index.ids.__getitem__
        if query.mode is RetrievalMode.DENSE:
            return by_score_then_id(with_ties(search, _dense_depth(query), probe), doc_id)
        return cut_by_id(search, _dense_depth(query), doc_id, probe)

    def _start_dense(
        self, snap: IndexSnapshot, queries: Sequence[Query], scope: SearchScope
    ) -> Future[DenseArmResult]:
        assert self._dense_arm is not None and snap.dense is not None
        job = DenseJob(
            texts=[q.text for q in queries],
            # One deeper than the cut, to see whether ties cross it (`_dense_cut`).
            depths=[_dense_depth(q) + 1 for q in queries],
            dense=snap.dense,
            live=scope.live,
        )
        return self._dense_arm.start(job)

    def _finish(
        self,
        snap: IndexSnapshot,
        scope: SearchScope,
        query: Query,
        first: FirstRound,
        *,
        timings: StageTimings,
        started: float,
    ) -> SearchResult:
        source = index_result_source(snap.index, snap.dense, scope)
        return finish_result(source, query, first, timings=timings, started=started)


def index_result_source(
    index: OpenIndex, dense: DenseIndex | None, scope: SearchScope
) -> ResultSource:
    """What finishing a result reads of one index (or one shard, `sharding.worker`), within a
    query's filter scope."""

    def prf_backend(single_arm: bool) -> IndexPrfBackend:
        # Second-round searches keep the filter: feedback and results stay in its scope.
        return IndexPrfBackend(
            index, dense, scope.live, with_ties=single_arm, sparse_filter=scope.sparse_filter
        )

    return ResultSource(
        index.ids.__getitem__, index.sparse.fetch, prf_backend, lambda q: _query_stats(index, q)
    )


def _query_stats(index: OpenIndex, query: Query) -> QueryStats:
    """What ADAPTIVE fusion's features need of the query: its distinct terms' document
    frequencies in the searched index (a lookup each) and the index's document count."""
    reader = index.sparse
    return QueryStats([reader.doc_freq(t) for t in query_term_counts(query.text)], reader.num_docs)


def _cancel(futures: Sequence[tuple[Future[DenseArmResult], list[int]]]) -> None:
    for future, _ in futures:
        future.cancel()


def _check_encoder_matches(index: OpenIndex, encoder: Encoder) -> None:
    info = index.manifest.encoder
    assert info is not None
    if info.model_id != encoder.model_id or info.dimension != encoder.dimension:
        raise IndexFormatError(
            f"{index.path} was built with encoder {info.model_id} ({info.dimension} dims), but "
            f"the server loaded {encoder.model_id} ({encoder.dimension} dims); serve it with "
            "the model it was built with"
        )
