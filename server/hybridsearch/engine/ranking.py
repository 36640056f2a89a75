"""From both arms' candidate lists to a result: fusion, PRF, the page, stored fields, hits.

Shared by every searcher, whatever its arms' source: `HybridSearcher` reads one index
snapshot; the sharded searcher (`sharding.searcher`) merges each arm over shards first. Both
call `finish_result` with a `ResultSource` (what the finishing steps read of the searched
data), so fusion, explain, pagination, PRF and highlights behave the same in both.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hybridsearch.engine.ties import ties_by_id
from hybridsearch.fusion.adaptive import QueryStats, fuse_adaptive, load_model
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.fusion.rrf import fuse_rrf
from hybridsearch.prf.pipeline import FirstRound, PrfBackend, applicable, run_prf
from hybridsearch.sparse.analysis import query_term_counts
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.sparse.highlight import highlight_hit
from hybridsearch.types import (
    AdaptiveChoice,
    ArmScore,
    FusedDoc,
    FusionMethod,
    Highlight,
    Hit,
    HitExplanation,
    Query,
    RetrievalMode,
    ScoredDoc,
    SearchResult,
    StageTimings,
    StoredField,
    VectorPrfMethod,
    elapsed_us,
)


@dataclass(frozen=True, slots=True)
class ResultSource:
    """What finishing a result reads of the searched data, by candidate ordinal.

    ``doc_id``: an ordinal's external id. ``fetch``: stored fields of ordinals (missing ones
    are left out). ``prf_backend``: the PRF backend of the query's scope (its argument:
    whether second-round lists keep ties, as single-arm rankings do). ``query_stats``: what
    ADAPTIVE fusion's features need of a query (its terms' document frequencies in the searched
    data and its document count); asked only for an ADAPTIVE query.
    """

    doc_id: Callable[[int], str]
    fetch: Callable[[Iterable[int]], Mapping[int, StoredDoc]]
    prf_backend: Callable[[bool], PrfBackend]
    query_stats: Callable[[Query], QueryStats]


def finish_result(
    source: ResultSource,
    query: Query,
    first: FirstRound,
    *,
    timings: StageTimings,
    started: float,
) -> SearchResult:
    """Fuse (or run PRF on) a first round, cut the page, fetch and build its hits."""
    expansion_terms: dict[str, float] = {}
    choices: list[AdaptiveChoice] = []  # ADAPTIVE fusion's choices, the last one shown
    page_end = query.offset + query.top_k  # the page: ranks offset + 1 .. page_end
    # Echo only the PRF parts whose arm runs in this mode.
    query = dataclasses.replace(query, prf=applicable(query.prf, query.mode))
    stats = _once(lambda: source.query_stats(query))
    if query.prf.enabled:
        prf_started = time.perf_counter()
        backend = source.prf_backend(query.mode is not RetrievalMode.HYBRID)
        prf = run_prf(
            query,
            first,
            backend,
            lambda s, d: rank_lists(
                query, s, d, source.doc_id, limit=None, stats=stats, choices=choices
            ),
        )
        fused = prf.ranked[query.offset : page_end]
        expansion_terms = prf.expansion_terms if query.explain else {}
        timings.prf_us = elapsed_us(prf_started)
    else:
        fusion_started = time.perf_counter()
        ranked = rank_lists(
            query,
            first.sparse,
            first.dense,
            source.doc_id,
            limit=page_end,
            stats=stats,
            choices=choices,
        )
        fused = ranked[query.offset :]
        if query.mode is RetrievalMode.HYBRID:
            timings.fusion_us = elapsed_us(fusion_started)
    fetch_started = time.perf_counter()
    wants_stored = bool(query.return_fields) or query.highlight is not None
    stored = source.fetch(d.ordinal for d in fused) if wants_stored else {}
    # Highlights mark the terms the BM25 query searched (not RM3's expansion terms).
    query_terms = frozenset(query_term_counts(query.text)) if query.highlight is not None else None
    hits = [
        make_hit(
            query,
            rank,
            doc,
            source.doc_id(doc.ordinal),
            stored.get(doc.ordinal),
            query_terms=query_terms,
        )
        for rank, doc in enumerate(fused, query.offset + 1)
    ]
    timings.fetch_us = elapsed_us(fetch_started)
    timings.total_us = elapsed_us(started)
    applied = query
    if choices and query.fusion.method is FusionMethod.ADAPTIVE:
        # What the query was fused with: the chosen alpha and the model's normalisation (the
        # request's alpha and normalisation are not used).
        model = load_model(query.fusion.adaptive_model)
        fusion = dataclasses.replace(
            query.fusion, alpha=choices[-1].alpha, normalization=model.normalization
        )
        applied = dataclasses.replace(query, fusion=fusion)
    return SearchResult(
        hits=hits,
        timings=timings,
        applied=applied,
        expansion_terms=expansion_terms,
        adaptive=choices[-1] if choices and query.explain else None,
    )


def _once(compute: Callable[[], QueryStats]) -> Callable[[], QueryStats]:
    """``compute``, run at most once (PRF may fuse twice; the query's stats do not change)."""
    cache: list[QueryStats] = []

    def get() -> QueryStats:
        if not cache:
            cache.append(compute())
        return cache[0]

    return get


def rank_lists(
    query: Query,
    sparse: Sequence[ScoredDoc] | None,
    dense: Sequence[ScoredDoc] | None,
    doc_id: Callable[[int], str],
    *,
    limit: int | None,
    stats: Callable[[], QueryStats] | None = None,
    choices: list[AdaptiveChoice] | None = None,
) -> list[FusedDoc]:
    """Fuse both lists, or order the one list given (the other None); the best ``limit``.

    ADAPTIVE fusion reads the query's ``stats`` and appends its choice to ``choices`` (when
    given).
    """
    if sparse is not None and dense is not None:
        # Ranks within each list as the arm alone ranks (ties by id), for RRF and explain.
        sparse, dense = ties_by_id(sparse, doc_id), ties_by_id(dense, doc_id)
        settings = query.fusion
        if settings.method is FusionMethod.RRF:
            fused: list[FusedDoc] = fuse_rrf(
                sparse,
                dense,
                k=settings.rrf_k,
                sparse_weight=settings.rrf_sparse_weight,
                dense_weight=settings.rrf_dense_weight,
                doc_id=doc_id,
                limit=limit,
            )
            return fused
        if settings.method is FusionMethod.ADAPTIVE:
            if stats is None:
                raise ValueError("ADAPTIVE fusion needs the query's stats")
            fused, choice = fuse_adaptive(
                sparse,
                dense,
                model=load_model(settings.adaptive_model),
                stats=stats(),
                doc_id=doc_id,
                limit=limit,
            )
            if choices is not None:
                choices.append(choice)
            return fused
        fused = fuse_interpolate(
            sparse,
            dense,
            alpha=settings.alpha,
            normalization=settings.normalization,
            doc_id=doc_id,
            limit=limit,
        )
        return fused
    single = sparse if sparse is not None else dense
    assert single is not None
    ranked = sorted(single, key=lambda d: (-d.score, doc_id(d.ordinal)))[:limit]
    fused = []
    is_sparse = sparse is not None
    for rank, doc in enumerate(ranked, 1):
        arm = ArmScore(raw_score=doc.score, rank=rank, normalized_score=doc.score)
        fused.append(
            FusedDoc(
                ordinal=doc.ordinal,
                score=doc.score,
                sparse=arm if is_sparse else None,
                dense=None if is_sparse else arm,
            )
        )
    return fused


def make_hit(
    query: Query,
    rank: int,
    doc: FusedDoc,
    doc_id: str,
    stored: StoredDoc | None,
    *,
    query_terms: frozenset[str] | None,
) -> Hit:
    """One hit of the page: id, score, rank, the stored fields asked for, explanation,
    highlights."""
    fields = query.return_fields
    highlights: tuple[Highlight, ...] = ()
    if stored is not None and query_terms is not None and query.highlight is not None:
        highlights = highlight_hit(
            stored.title, stored.text, query_terms, query.highlight.max_chars
        )
    return Hit(
        id=doc_id,
        score=doc.score,
        rank=rank,
        title=stored.title if stored and StoredField.TITLE in fields else None,
        text=stored.text if stored and StoredField.TEXT in fields else None,
        metadata=stored.metadata if stored and StoredField.METADATA in fields else None,
        explanation=HitExplanation(doc.sparse, doc.dense, doc.score) if query.explain else None,
        highlights=highlights,
    )


def sparse_depth(query: Query) -> int:
    """BM25 candidates of the first round: the page's end at least (offset + top_k), and
    enough for RM3's feedback in sparse mode."""
    page_end = query.offset + query.top_k
    if query.mode is not RetrievalMode.SPARSE:
        return max(query.fusion.sparse_depth, page_end)
    return max(page_end, query.prf.fb_docs) if query.prf.rm3 else page_end


def dense_depth(query: Query) -> int:
    """Dense candidates of the first round: the page's end at least (offset + top_k), and
    enough for vector PRF's feedback in dense mode."""
    page_end = query.offset + query.top_k
    if query.mode is not RetrievalMode.DENSE:
        return max(query.fusion.dense_depth, page_end)
    if query.prf.vector_method is VectorPrfMethod.NONE:
        return page_end
    return max(page_end, query.prf.vector_depth)
