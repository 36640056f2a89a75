"""The sharded front: one query in, every shard's per-arm candidates, fused hits out.

``ShardedSearcher`` answers like `HybridSearcher` (search, batch, progressive, document)
over a sharded collection::

    query ─▶ encoder (once, micro-batched: `DenseArm` without a dense index)
          ─▶ every shard: BM25 top-depth + dense top-depth (filtered), and the stored fields
             of each arm's top offset+top_k when the page shows them  [one call per shard]
          ─▶ each arm merged over shards (`merge.merge_arm`)
          ─▶ `engine.ranking.finish_result`: fusion, PRF, page, stored fields, hits
             (a shard is called again only for a page's document it did not return)

so fusion, explain, filters, pagination, PRF and progressive streams behave exactly as on one
index. The shards are reached through a `ShardGroup` (in this process, or Ray actors).
A collection of one shard in another process (Ray) has nothing to merge: its shard finishes
each query itself (`ShardWorker.search`: the same arms and `finish_result`) and returns the
page, in one round trip (progressive streams keep the path above).
Partial answers: a query with ``allow_partial`` answers from the shards that could be
searched and names the others in ``SearchResult.missing_shards``; otherwise a shard with no
live replica fails the query with `UnavailableError`.

``ShardedWriter`` routes each write to the owning shard (`layout.shard_of`): documents are
encoded here, once, and committed by the shard's writer; an upsert returns once every shard
it touched has committed. A collection's generation is the sum of its shards' generations
(it grows with every commit of any shard).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.batching import BatchingSettings, BatchStats
from hybridsearch.engine.dense_arm import DenseArm, DenseArmResult, DenseJob
from hybridsearch.engine.ranking import ResultSource, dense_depth, finish_result, sparse_depth
from hybridsearch.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    UnavailableError,
)
from hybridsearch.fusion.adaptive import QueryStats
from hybridsearch.metadata.filter import bind_filter
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.prf.pipeline import FirstRound, applicable
from hybridsearch.sharding.group import FanOut, ShardGroup, missing_shards_message
from hybridsearch.sharding.layout import ShardManifest, shard_of
from hybridsearch.sharding.merge import merge_arm, shard_of_ordinal
from hybridsearch.sharding.term_cache import TermStatsCache
from hybridsearch.sharding.worker import (
    ArmsRequest,
    CollectionStats,
    ShardArms,
    ShardStats,
    TermStats,
)
from hybridsearch.sparse.analysis import analyze, query_term_counts
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.storage.builder import dedupe_last_wins, dense_text
from hybridsearch.storage.compaction import CompactionOutcome
from hybridsearch.storage.manifest import Manifest
from hybridsearch.storage.writer import DeleteOutcome, UpsertOutcome
from hybridsearch.types import (
    Document,
    Query,
    RankedList,
    RetrievalMode,
    SearchResult,
    StageTimings,
    elapsed_us,
)

log = logging.getLogger(__name__)

#: Where BM25's term statistics come from (`ShardedSearcher`'s ``bm25_statistics``): the
#: collection's (the default: idf equals an unsharded index's; the shards' document
#: frequencies are cached per shard generation, see `term_cache`), or each shard's own.
BM25_SHARD = "shard"
BM25_COLLECTION = "collection"
BM25_STATISTICS = (BM25_SHARD, BM25_COLLECTION)


@dataclass(frozen=True, slots=True)
class ShardedIndexView:
    """What the API reads of a served collection's index (`GetIndexStats`, collections):
    a manifest summed over shards, and the bytes on disk; ``missing_shards``: the shards that
    had no live replica (then left out of the sums)."""

    manifest: Manifest
    size_bytes: int
    missing_shards: tuple[int, ...] = ()


def collection_manifest(sharded: ShardManifest, stats: Sequence[ShardStats]) -> Manifest:
    """One manifest describing the whole collection (counts and generations summed)."""
    return Manifest(
        document_count=sum(s.document_count for s in stats),
        ordinal_count=sum(s.ordinal_count for s in stats),
        created_at=sharded.created_at,
        encoder=sharded.encoder,
        dense_index=stats[0].dense_index if stats else "exact",
        generation=sum(s.generation for s in stats),
        schema=sharded.schema,
    )


class _QueryState:
    """One query's view of the collection: ids of the candidates seen, shards missing."""

    def __init__(self, searcher: ShardedSearcher, query: Query) -> None:
        self.searcher = searcher
        self.query = query
        self.ids: dict[int, str] = {}
        self.missing: set[int] = set()
        self.stored: dict[tuple[int, str], StoredDoc] = {}
        # The first fan-out's answers number candidates by their shards' local ordinals;
        # a later fan-out's by id (`merge.merge_arm`'s ``known``), built when one comes.
        self._first: Mapping[int, ShardArms] | None = None
        self._ordinal_of: dict[str, int] | None = None

    def fan_out_arms(self, request: ArmsRequest) -> dict[int, ShardArms]:
        """Every shard's answer to ``request``."""
        fan = self.searcher.fan_out_arms([request], allow_partial=self.query.allow_partial)
        self.missing.update(fan.missing)
        answers = {shard: answers[0] for shard, answers in fan.results.items()}
        self.keep_stored(answers)
        return answers

    def keep_stored(self, answers: Mapping[int, ShardArms]) -> None:
        """Keep the stored fields the shards returned with their candidates (`fetch` then
        asks a shard only for what is still missing)."""
        for shard, answer in answers.items():
            for doc_id, doc in answer.stored.items():
                self.stored[shard, doc_id] = doc

    def merged(
        self, answers: Mapping[int, ShardArms], arm: str, depth: int, ties: bool
    ) -> RankedList:
        """One arm merged over the shards' answers (the answers of one fan-out: another
        fan-out of this query may have reached a newer version of a shard)."""
        lists = {s: getattr(a, arm) for s, a in answers.items() if getattr(a, arm) is not None}
        count = self.searcher.shard_count
        if self._first is None:
            self._first = answers
        if answers is self._first and self._ordinal_of is None:
            return merge_arm(lists, depth, count, self.ids, ties=ties)
        if self._ordinal_of is None:
            self._ordinal_of = {doc_id: ordinal for ordinal, doc_id in self.ids.items()}
        return merge_arm(lists, depth, count, self.ids, ties=ties, known=self._ordinal_of)

    def fetch(self, ordinals: Iterable[int]) -> dict[int, StoredDoc]:
        """Stored fields of candidates: those the shards returned with their candidates, and
        the rest from their shards (by id; one call per shard that has some)."""
        out: dict[int, StoredDoc] = {}
        by_shard: dict[int, list[int]] = {}
        for ordinal in ordinals:
            shard = shard_of_ordinal(ordinal, self.searcher.shard_count)[0]
            kept = self.stored.get((shard, self.ids[ordinal]))
            if kept is not None:
                out[ordinal] = kept
            else:
                by_shard.setdefault(shard, []).append(ordinal)
        if not by_shard:
            return out
        fan = self.searcher.group.fan_out(
            "fetch",
            lambda s: ([self.ids[o] for o in by_shard[s]],),
            allow_partial=self.query.allow_partial,
            shards=sorted(by_shard),
        )
        self.missing.update(fan.missing)
        for shard, stored in fan.results.items():
            for ordinal in by_shard[shard]:
                doc = stored.get(self.ids[ordinal])
                if doc is not None:
                    out[ordinal] = doc
        return out

    def source(self) -> ResultSource:
        """What finishing this query's result reads."""
        return ResultSource(self.ids.__getitem__, self.fetch, self.prf_backend, self.query_stats)

    def query_stats(self, query: Query) -> QueryStats:
        """ADAPTIVE fusion's query statistics over the whole collection (summed over shards)."""
        backend = self.prf_backend(with_ties=False)
        terms = list(query_term_counts(query.text))
        backend._load_term_stats(set(terms))  # one fan-out for every term (same module)
        return QueryStats([backend.doc_freq(t) for t in terms], backend.num_docs)

    def prf_backend(self, with_ties: bool) -> ShardedPrfBackend:
        """PRF over the shards, within this query's filter."""
        return ShardedPrfBackend(self, with_ties)


class ShardedPrfBackend:
    """`prf.pipeline.PrfBackend` over shards: feedback from the owning shards, term
    statistics summed over shards, second-round searches fanned out and merged."""

    def __init__(self, state: _QueryState, with_ties: bool) -> None:
        self._state = state
        self._with_ties = with_ties
        self._doc_freq: dict[str, int] = {}
        self._num_docs: int | None = None

    def feedback_text(self, ordinals: Sequence[int]) -> dict[int, str]:
        """Title and text as BM25 indexes them; prefetches their terms' statistics."""
        stored = self._state.fetch(ordinals)
        texts = {o: f"{d.title}\n{d.text}" if d.title else d.text for o, d in stored.items()}
        self._load_term_stats({t for text in texts.values() for t in analyze(text)})
        return texts

    def _load_term_stats(self, terms: set[str]) -> None:
        wanted = sorted(terms - self._doc_freq.keys())
        if not wanted and self._num_docs is not None:
            return
        fan = self._state.searcher.group.fan_out(
            "term_stats", lambda s: (wanted,), allow_partial=self._state.query.allow_partial
        )
        self._state.missing.update(fan.missing)
        for term in wanted:
            self._doc_freq[term] = sum(freqs[term] for freqs, _ in fan.results.values())
        self._num_docs = sum(n for _, n in fan.results.values())

    def doc_vectors(self, ordinals: Sequence[int]) -> NDArray[np.float32]:
        """The documents' vectors, from their shards."""
        state = self._state
        count = state.searcher.shard_count
        by_shard: dict[int, list[str]] = {}
        for ordinal in ordinals:
            by_shard.setdefault(shard_of_ordinal(ordinal, count)[0], []).append(state.ids[ordinal])
        fan = state.searcher.group.fan_out(
            "doc_vectors",
            lambda s: (by_shard[s],),
            allow_partial=state.query.allow_partial,
            shards=sorted(by_shard),
        )
        state.missing.update(fan.missing)
        found: dict[str, NDArray[np.float32]] = {}
        for vectors in fan.results.values():
            found.update(vectors)
        rows = [found[state.ids[o]] for o in ordinals if state.ids[o] in found]
        dimension = state.searcher.dimension
        return np.stack(rows) if rows else np.zeros((0, dimension), dtype=np.float32)

    def doc_freq(self, term: str) -> int:
        """Documents holding the term, over every shard."""
        if term not in self._doc_freq:
            self._load_term_stats({term})
        return self._doc_freq[term]

    @property
    def num_docs(self) -> int:
        """Live documents over every shard."""
        if self._num_docs is None:
            self._load_term_stats(set())
        assert self._num_docs is not None
        return self._num_docs

    def search_sparse(self, term_weights: Mapping[str, float], depth: int) -> RankedList:
        """BM25 with the weighted (expanded) query on every shard, merged."""
        request = ArmsRequest(
            dict(term_weights), depth, None, 0, self._state.query.filter, self._with_ties
        )
        answers = self._state.fan_out_arms(request)
        return self._state.merged(answers, "sparse", depth, self._with_ties)

    def search_dense(self, vector: NDArray[np.float32], depth: int) -> RankedList:
        """Inner product with the new query vector on every shard, merged."""
        request = ArmsRequest(
            None, 0, vector, depth, self._state.query.filter, dense_ties=self._with_ties
        )
        answers = self._state.fan_out_arms(request)
        return self._state.merged(answers, "dense", depth, self._with_ties)


class ShardedSearcher:
    """Runs queries over a sharded collection's shards (see the module docstring)."""

    def __init__(
        self,
        group: ShardGroup,
        manifest: ShardManifest,
        encoder: Encoder | None,
        *,
        batching: BatchingSettings | None = None,
        arm_threads: int = 4,
        bm25_statistics: str = BM25_COLLECTION,
        dense_arm: DenseArm | None = None,
    ) -> None:
        """``dense_arm``: a dense arm over ``encoder`` shared with other collections (a data
        directory's, by model); not closed by `close`. None: one of its own."""
        if bm25_statistics not in BM25_STATISTICS:
            raise ValueError(f"bm25_statistics must be one of {BM25_STATISTICS}")
        self.group = group
        self.manifest = manifest
        self._collection_bm25 = bm25_statistics == BM25_COLLECTION
        self._term_cache = TermStatsCache(manifest.shard_count)
        self._encoder = encoder
        self._owns_dense_arm = dense_arm is None
        if dense_arm is None and encoder is not None:
            dense_arm = DenseArm(encoder, batching, threads=arm_threads)
        self._dense_arm = dense_arm if encoder is not None else None
        # One shard in another process (Ray): nothing to merge, so the shard finishes each
        # query itself (`ShardWorker.search`): one round trip, a page back instead of two
        # candidate lists. In this process the shards' arms overlap the encoding instead.
        self._finishes_on_shard = manifest.shard_count == 1 and not group.in_process

    @property
    def shard_count(self) -> int:
        """How many shards the collection has."""
        return self.manifest.shard_count

    @property
    def dimension(self) -> int:
        """The vectors' dimension (0 without vectors)."""
        return self.manifest.encoder.dimension if self.manifest.encoder else 0

    @property
    def encoder(self) -> Encoder | None:
        """The query (and document) encoder, when the collection has vectors."""
        return self._encoder

    @property
    def index(self) -> ShardedIndexView:
        """The collection's numbers, asked of every shard now (UnavailableError: a shard
        has no live replica)."""
        return self.index_view(allow_partial=False)

    def index_view(self, *, allow_partial: bool) -> ShardedIndexView:
        """The collection's numbers, asked of every shard now; with ``allow_partial`` those
        of the shards that answered, naming the others."""
        fan = self.group.fan_out("stats", lambda s: (), allow_partial=allow_partial)
        stats = [fan.results[s] for s in sorted(fan.results)]
        return ShardedIndexView(
            collection_manifest(self.manifest, stats),
            sum(s.size_bytes for s in stats),
            fan.missing,
        )

    @property
    def dense_arm(self) -> DenseArm | None:
        """The dense arm encoding its queries (shared when given to the constructor)."""
        return self._dense_arm

    def batch_stats(self) -> BatchStats | None:
        """The query encoder's micro-batching counters."""
        return self._dense_arm.stats() if self._dense_arm is not None else None

    def close(self) -> None:
        """Stop the encoder's batcher (unless shared) and release the shards."""
        if self._dense_arm is not None and self._owns_dense_arm:
            self._dense_arm.close()
        self.group.close()

    # -- searches ---------------------------------------------------------------------------

    def fan_out_arms(self, requests: Sequence[ArmsRequest], *, allow_partial: bool) -> FanOut:
        """Every shard's arms for ``requests``: one call per shard.

        With collection-wide BM25 statistics the requests carry the collection's statistics
        of their terms, from the front's `TermStatsCache`; a call for them goes first only
        when a term or a shard is not cached yet. When an answer shows that a shard has
        committed since (another generation: its statistics just refreshed the cache), the
        arms are asked once more with the new sums, so scores stay the collection's. One
        shard's own statistics are the collection's: it is asked for none.
        """
        if (
            not self._collection_bm25
            or self.shard_count == 1
            or all(r.term_weights is None for r in requests)
        ):
            return self.group.fan_out(
                "arms", lambda s: (list(requests),), allow_partial=allow_partial
            )
        terms = sorted({t for r in requests for t in r.term_weights or ()})
        collection = self._term_cache.collection(terms)
        shards: list[int] | None = None
        missing: set[int] = set()
        if collection is None:
            stats = self.group.fan_out(
                "term_stats_at", lambda s: (terms,), allow_partial=allow_partial
            )
            missing.update(stats.missing)
            for shard, shard_stats in stats.results.items():
                self._term_cache.update(shard, shard_stats)
            collection = summed_stats(stats.results.values())
            shards = sorted(stats.results)
        for attempt in range(2):
            with_stats = [_with_collection_stats(r, collection) for r in requests]
            fan = self.group.fan_out(
                "arms",
                functools.partial(_same_args, (with_stats,)),
                allow_partial=allow_partial,
                shards=shards,
            )
            changed = False
            for shard, answers in fan.results.items():
                for answer in answers:
                    if answer.term_stats is not None:
                        changed |= self._term_cache.update(shard, answer.term_stats)
            refreshed = self._term_cache.collection(terms) if changed and attempt == 0 else None
            if refreshed is None or refreshed == collection:
                break
            collection = refreshed
        return FanOut(fan.results, tuple(sorted({*missing, *fan.missing})))

    def document(self, doc_id: str) -> StoredDoc | None:
        """The stored fields of the live document with this id, from its shard's writer
        replica (it has every acknowledged write; another replica, when it is down)."""
        shard = shard_of(doc_id, self.shard_count)
        try:
            stored: dict[str, StoredDoc] = self.group.write(shard, "fetch", [doc_id])
        except UnavailableError:
            stored = self.group.call(shard, "fetch", [doc_id])
        return stored.get(doc_id)

    def search(self, query: Query) -> SearchResult:
        """Run one query."""
        return self._search_many([query], [""])[0]

    def search_batch(self, queries: Sequence[Query]) -> list[SearchResult]:
        """Run several queries: one encoder run, one call per shard for all of them."""
        return self._search_many(queries, [f"requests[{i}]." for i in range(len(queries))])

    def _check(self, queries: Sequence[Query], prefixes: Sequence[str]) -> None:
        errors: list[InvalidArgumentError] = []
        for query, prefix in zip(queries, prefixes, strict=True):
            if query.mode is not RetrievalMode.SPARSE and self._dense_arm is None:
                raise FailedPreconditionError(
                    f"mode {query.mode.name} needs the query encoder and document vectors; "
                    "this collection has none or the server was started without a model"
                )
            if query.filter is not None:
                try:  # every shard has the collection's schema
                    bind_filter(query.filter, self.manifest.schema, field_prefix=prefix)
                except InvalidArgumentError as exc:
                    errors.append(exc)
        if errors:
            raise InvalidArgumentError.merged(errors)

    def _start_encoding(self, texts: Sequence[str]) -> Future[DenseArmResult]:
        assert self._dense_arm is not None
        job = DenseJob(texts=list(texts), depths=[0] * len(texts), dense=None, live=None)
        return self._dense_arm.start(job)

    def _search_many(self, queries: Sequence[Query], prefixes: Sequence[str]) -> list[SearchResult]:
        started = time.perf_counter()
        self._check(queries, prefixes)
        dense_positions = [i for i, q in enumerate(queries) if q.mode is not RetrievalMode.SPARSE]
        encoding = None
        if dense_positions:
            encoding = self._start_encoding([queries[i].text for i in dense_positions])
        row = {i: j for j, i in enumerate(dense_positions)}
        try:
            if encoding is not None and self.group.in_process:
                # The shards are in this process: each runs its BM25 arm while the queries
                # are encoded, then waits for the vector (as one index does).
                pending = encoding
                requests = [
                    arms_request(q, None, _vector_of(pending, row[i]) if i in row else None)
                    for i, q in enumerate(queries)
                ]
            else:
                ready = encoding.result().vectors if encoding is not None else None
                requests = [
                    arms_request(q, ready[row[i]] if ready is not None and i in row else None)
                    for i, q in enumerate(queries)
                ]
            shards_started = time.perf_counter()
            allow_partial = all(q.allow_partial for q in queries)
            if self._finishes_on_shard:
                asked = list(zip(queries, requests, strict=True))
                fan = self.group.fan_out("search", lambda s: (asked,), allow_partial=allow_partial)
            else:
                fan = self.fan_out_arms(requests, allow_partial=allow_partial)
        except BaseException:
            if encoding is not None:
                encoding.cancel()
            raise
        shards_us = elapsed_us(shards_started)  # in process: overlaps the encoding
        encode_us: dict[int, int] = {}  # each query's: its encoder run's (`DenseArmResult`)
        vectors: dict[int, NDArray[np.float32]] = {}
        if encoding is not None:
            encoded = encoding.result()
            encode_us = {i: encoded.encode_us[j] for i, j in row.items()}
            vectors = {i: encoded.vectors[j] for i, j in row.items()}
        if self._finishes_on_shard and fan.results:
            (finished,) = fan.results.values()
            return [
                _answered_by_shard(r, encode_us.get(i, 0), started) for i, r in enumerate(finished)
            ]
        results = []
        for i, query in enumerate(queries):
            state = _QueryState(self, query)
            state.missing.update(fan.missing)
            answers = {shard: replies[i] for shard, replies in fan.results.items()}
            state.keep_stored(answers)
            first = _first_round(state, query, answers, vectors.get(i))
            timings = StageTimings(
                sparse_us=shards_us if first.sparse is not None else 0,
                dense_us=shards_us if first.dense is not None else 0,
                encode_us=encode_us.get(i, 0) if first.dense is not None else 0,
            )
            results.append(_finished(state, query, first, timings, started))
        return results

    def search_progressive(
        self, query: Query, on_partial: Callable[[SearchResult], object]
    ) -> SearchResult:
        """As `HybridSearcher.search_progressive`: the BM25-only ranking (every shard's
        sparse arm, merged) goes to ``on_partial`` while the query is encoded."""
        if query.mode is not RetrievalMode.HYBRID:
            return self.search(query)
        started = time.perf_counter()
        self._check([query], [""])
        assert self._dense_arm is not None
        encoding = self._dense_arm.start(DenseJob([query.text], [0], None, None))
        try:
            state = _QueryState(self, query)
            sparse_started = time.perf_counter()
            sparse_only = dataclasses.replace(arms_request(query, None), dense_depth=0)
            sparse_answers = state.fan_out_arms(sparse_only)
            sparse_list = state.merged(sparse_answers, "sparse", sparse_depth(query), False)
            sparse_us = elapsed_us(sparse_started)
            partial_first = FirstRound(
                sparse_list, None, None, sparse_depth(query), dense_depth(query)
            )
            partial_query = dataclasses.replace(query, mode=RetrievalMode.SPARSE)
            on_partial(
                _finished(
                    state, partial_query, partial_first, StageTimings(sparse_us=sparse_us), started
                )
            )
        except BaseException:
            encoding.cancel()
            raise
        encoded = encoding.result()
        vector = encoded.vectors[0]
        dense_started = time.perf_counter()
        dense_request = dataclasses.replace(arms_request(query, vector), term_weights=None)
        dense_answers = state.fan_out_arms(dense_request)
        dense_list = state.merged(dense_answers, "dense", dense_depth(query), False)
        timings = StageTimings(
            sparse_us=sparse_us,
            encode_us=encoded.encode_us[0],
            dense_us=elapsed_us(dense_started),
        )
        first = FirstRound(sparse_list, dense_list, vector, sparse_depth(query), dense_depth(query))
        return _finished(state, query, first, timings, started)


def summed_stats(stats: Iterable[TermStats]) -> CollectionStats:
    """Shards' statistics of the same terms summed: the collection's."""
    freq: dict[str, int] = {}
    docs = 0
    for shard in stats:
        docs += shard.num_docs
        for term, n in shard.doc_freq.items():
            freq[term] = freq.get(term, 0) + n
    return CollectionStats(freq, docs)


def _same_args(args: tuple[Any, ...], shard: int) -> tuple[Any, ...]:
    return args


def _with_collection_stats(request: ArmsRequest, stats: CollectionStats) -> ArmsRequest:
    if request.term_weights is None:
        return request
    return dataclasses.replace(request, collection_stats=stats)


def _vector_of(encoding: Future[DenseArmResult], row: int) -> Callable[[], NDArray[np.float32]]:
    def vector() -> NDArray[np.float32]:
        vector: NDArray[np.float32] = encoding.result().vectors[row]
        return vector

    return vector


def arms_request(
    query: Query,
    vector: NDArray[np.float32] | None,
    vector_of: Callable[[], NDArray[np.float32]] | None = None,
) -> ArmsRequest:
    """What every shard runs for ``query`` (the arms its mode needs, to the fusion depths)."""
    mode = query.mode
    weights = None
    if mode is not RetrievalMode.DENSE:
        weights = {term: float(n) for term, n in query_term_counts(query.text).items()}
    return ArmsRequest(
        term_weights=weights,
        sparse_depth=sparse_depth(query),
        vector=vector if mode is not RetrievalMode.SPARSE else None,
        dense_depth=dense_depth(query),
        filter=query.filter,
        sparse_ties=mode is RetrievalMode.SPARSE,
        dense_ties=mode is RetrievalMode.DENSE,
        stored_depth=_stored_depth(query),
        vector_of=vector_of if mode is not RetrievalMode.SPARSE else None,
    )


def _stored_depth(query: Query) -> int:
    """How deep in each arm a shard returns stored fields with its candidates: to the
    page's end when the page shows stored fields and comes from the first round (without
    PRF), so the page's fields come back in the same round trip; else none."""
    wants_stored = bool(query.return_fields) or query.highlight is not None
    if not wants_stored or applicable(query.prf, query.mode).enabled:
        return 0
    return query.offset + query.top_k


def _first_round(
    state: _QueryState,
    query: Query,
    answers: Mapping[int, ShardArms],
    vector: NDArray[np.float32] | None,
) -> FirstRound:
    mode = query.mode
    sparse = dense = None
    if mode is not RetrievalMode.DENSE:
        sparse = state.merged(answers, "sparse", sparse_depth(query), mode is RetrievalMode.SPARSE)
    if mode is not RetrievalMode.SPARSE:
        dense = state.merged(answers, "dense", dense_depth(query), mode is RetrievalMode.DENSE)
    return FirstRound(sparse, dense, vector, sparse_depth(query), dense_depth(query))


def _answered_by_shard(result: SearchResult, encode_us: int, started: float) -> SearchResult:
    """A result the one shard finished (`ShardWorker.search`), with the front's encoding
    and total time."""
    timings = dataclasses.replace(result.timings, encode_us=encode_us, total_us=elapsed_us(started))
    return dataclasses.replace(result, timings=timings)


def _finished(
    state: _QueryState, query: Query, first: FirstRound, timings: StageTimings, started: float
) -> SearchResult:
    result = finish_result(state.source(), query, first, timings=timings, started=started)
    if state.missing and not query.allow_partial:  # a later stage lost a shard
        raise UnavailableError(missing_shards_message(sorted(state.missing)))
    return dataclasses.replace(result, missing_shards=tuple(sorted(state.missing)))


class ShardedWriter:
    """Routes writes of a sharded collection to their shards (see the module docstring)."""

    def __init__(self, searcher: ShardedSearcher) -> None:
        self._searcher = searcher
        self._group = searcher.group
        self._generations: dict[int, int] = {}

    @property
    def manifest(self) -> Manifest:
        """The collection's manifest as of its shards' last commits (asks every shard)."""
        index = self._searcher.index
        return index.manifest

    @property
    def schema(self) -> CollectionSchema:
        """The collection's metadata schema, from the shard manifest (no shard asked)."""
        return self._searcher.manifest.schema

    def upsert(self, docs: Sequence[Document]) -> UpsertOutcome:
        """Encode once here, commit each shard's documents on its writer; returns when every
        shard touched has committed."""
        unique, duplicates = dedupe_last_wins(docs)
        vectors = None
        encoder = self._searcher.encoder
        if self._searcher.manifest.encoder is not None and unique:
            if encoder is None:
                raise FailedPreconditionError(
                    "this collection holds document vectors, but the server was started "
                    "without a model to encode new documents; restart it with --model"
                )
            vectors = encoder.encode_documents([dense_text(d) for d in unique])
        count = self._searcher.shard_count
        rows: dict[int, list[int]] = {}
        for i, doc in enumerate(unique):
            rows.setdefault(shard_of(doc.id, count), []).append(i)
        accepted = replaced = 0
        for shard, positions in sorted(rows.items()):
            shard_vectors = vectors[positions] if vectors is not None else None
            outcome: UpsertOutcome = self._group.write(
                shard, "upsert", [unique[i] for i in positions], shard_vectors
            )
            accepted += outcome.accepted
            replaced += outcome.replaced
            self._generations[shard] = outcome.generation
        return UpsertOutcome(accepted + duplicates, replaced + duplicates, self._generation())

    def delete(self, ids: Sequence[str]) -> DeleteOutcome:
        """Delete each id on its shard (one commit per shard touched)."""
        count = self._searcher.shard_count
        by_shard: dict[int, list[str]] = {}
        for doc_id in dict.fromkeys(ids):
            by_shard.setdefault(shard_of(doc_id, count), []).append(doc_id)
        deleted: list[str] = []
        not_found: list[str] = []
        for shard, shard_ids in sorted(by_shard.items()):
            outcome: DeleteOutcome = self._group.write(shard, "delete", shard_ids)
            deleted.extend(outcome.deleted)
            not_found.extend(outcome.not_found)
            self._generations[shard] = outcome.generation
        return DeleteOutcome(deleted, not_found, self._generation())

    def compact(self) -> CompactionOutcome:
        """Compact every shard (one already compact is left as it is); the outcome summed
        over them, rewritten when any shard was."""
        outcomes: list[CompactionOutcome] = []
        for shard in range(self._searcher.shard_count):
            outcome: CompactionOutcome = self._group.write(shard, "compact")
            self._generations[shard] = outcome.generation
            outcomes.append(outcome)
        return _summed(outcomes, self._generation())

    def _generation(self) -> int:
        """The collection's generation: the sum of its shards' (each as of its last commit
        seen here, asked once). Called after a commit: a shard that cannot answer now is left
        out rather than failing a write that was committed; it is asked again next time."""
        for shard in range(self._searcher.shard_count):
            if shard not in self._generations:
                try:
                    stat: Any = self._group.call(shard, "stats")
                except (UnavailableError, DeadlineExceededError):
                    continue
                self._generations[shard] = stat.generation
        return sum(self._generations.values())

    def close(self) -> None:
        """Nothing to release (the searcher closes the shards)."""


def _summed(outcomes: Sequence[CompactionOutcome], generation: int) -> CompactionOutcome:
    first = outcomes[0]
    return dataclasses.replace(
        first,
        generation=generation,
        rows_before=sum(o.rows_before for o in outcomes),
        rows_after=sum(o.rows_after for o in outcomes),
        documents=sum(o.documents for o in outcomes),
        size_bytes_before=sum(o.size_bytes_before for o in outcomes),
        size_bytes_after=sum(o.size_bytes_after for o in outcomes),
        seconds=sum(o.seconds for o in outcomes),
        rewritten=any(o.rewritten for o in outcomes),
    )
