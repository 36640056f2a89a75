"""Pseudo-relevance feedback around the two arms: which feedback, which re-search, which fusion.

The engine runs the first round (BM25 list, dense list, query vector) and hands it here with a
:class:`PrfBackend` (how to read the index) and a ``rank`` function (how the engine fuses or
orders lists). Where feedback comes from and whether lists are fused before and/or after PRF
follows the three pipelines of Li, Mourad, Koopman & Zuccon, "To Interpolate or not to
Interpolate: PRF, Dense and Sparse Retrievers", SIGIR 2022:

- ``AFTER``: each arm takes feedback from its own first-round list; the final lists are fused.
- ``BEFORE``: the first-round lists are fused and the fused list is every PRF arm's feedback;
  the result is the PRF arms' second-round lists alone (fused when both arms have PRF).
- ``BOTH``: feedback from the fused list as in ``BEFORE``, then the arms' final lists
  (second-round where PRF ran, first-round otherwise) are fused again.

Single-arm modes run their arm's PRF on their own list. A backend with its own RM3
(`NativeRm3Backend`: Anserini's on a Lucene-backed index) runs it instead of `expand_rm3`;
its feedback is then its own first BM25 round, whatever the stage. The PRF rules themselves
are the pure functions :func:`~hybridsearch.prf.rm3.rm3_expand` and :mod:`hybridsearch.prf.vector`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from hybridsearch.prf.rm3 import FeedbackDoc, rm3_expand
from hybridsearch.prf.vector import vector_prf_average, vector_prf_rocchio
from hybridsearch.sparse.analysis import query_term_counts, term_counts
from hybridsearch.types import (
    FusedDoc,
    PrfSettings,
    PrfStage,
    Query,
    RetrievalMode,
    ScoredDoc,
    VectorPrfMethod,
)

#: Orders one or two arm lists into the final list (the engine's fusion; None = arm absent).
RankLists = Callable[[Sequence[ScoredDoc] | None, Sequence[ScoredDoc] | None], list[FusedDoc]]


class PrfBackend(Protocol):
    """What PRF reads from one index snapshot."""

    def feedback_text(self, ordinals: Sequence[int]) -> dict[int, str]:
        """The indexed text (title + text) of these documents."""
        ...

    def doc_vectors(self, ordinals: Sequence[int]) -> NDArray[np.float32]:
        """The dense vectors of these documents, one row each, in order."""
        ...

    def doc_freq(self, term: str) -> int:
        """How many documents hold the analysed term."""
        ...

    @property
    def num_docs(self) -> int:
        """How many documents the index holds."""
        ...

    def search_sparse(self, term_weights: Mapping[str, float], depth: int) -> Sequence[ScoredDoc]:
        """BM25 over weighted analysed terms."""
        ...

    def search_dense(self, vector: NDArray[np.float32], depth: int) -> Sequence[ScoredDoc]:
        """Inner-product search with one query vector."""
        ...


@runtime_checkable
class NativeRm3Backend(Protocol):
    """A backend whose index runs RM3 itself (Anserini's, on a Lucene-backed index)."""

    def native_rm3(
        self, query_text: str, settings: PrfSettings, depth: int
    ) -> tuple[Sequence[ScoredDoc], dict[str, float]] | None:
        """The second-round BM25 list and the expanded query's term weights, with feedback
        from the index's own first round (None: this index has no RM3 of its own)."""
        ...


@dataclass(frozen=True, slots=True)
class FirstRound:
    """The first-round output of the arms that ran (None: the arm did not run)."""

    sparse: Sequence[ScoredDoc] | None
    dense: Sequence[ScoredDoc] | None
    query_vector: NDArray[np.float32] | None
    sparse_depth: int
    dense_depth: int


@dataclass(frozen=True, slots=True)
class PrfResult:
    """The ranked list after PRF, the settings that actually ran, and RM3's expanded query."""

    ranked: list[FusedDoc]
    applied: PrfSettings
    expansion_terms: dict[str, float]


def applicable(settings: PrfSettings, mode: RetrievalMode) -> PrfSettings:
    """``settings`` with the parts whose arm does not run in ``mode`` switched off."""
    rm3 = settings.rm3 and mode is not RetrievalMode.DENSE
    vector_on = mode is not RetrievalMode.SPARSE
    method = settings.vector_method if vector_on else VectorPrfMethod.NONE
    return dataclasses.replace(settings, rm3=rm3, vector_method=method)


def feedback_weights(docs: Sequence[ScoredDoc]) -> list[float]:
    """Per-document weights ``P(q | d)`` for RM3 from retrieval scores.

    BM25 scores are positive and used as they are (as Anserini does). A fused list can carry
    zero or negative scores (z-score interpolation): then the scores are shifted so the lowest
    feedback document gets a small positive weight, keeping the order of the weights.
    """
    scores = [doc.score for doc in docs]
    if not scores or min(scores) > 0.0:
        return scores
    low, high = min(scores), max(scores)
    epsilon = (high - low) * 1e-3 or 1.0
    return [s - low + epsilon for s in scores]


def expand_rm3(
    query_text: str,
    feedback: Sequence[ScoredDoc],
    settings: PrfSettings,
    backend: PrfBackend,
) -> dict[str, float]:
    """The RM3-expanded BM25 query (term → weight) from the top of ``feedback``.

    Feedback terms come from the analysed stored title + text (the index analyser); terms in
    more than 10 % of the documents are left out, Anserini's stand-in for a stopword list.
    """
    top = list(feedback[: settings.fb_docs])
    texts = backend.feedback_text([doc.ordinal for doc in top])
    docs = [
        FeedbackDoc(score=weight, term_freqs=term_counts(texts.get(doc.ordinal, "")))
        for doc, weight in zip(top, feedback_weights(top), strict=True)
    ]
    query_terms = {term: float(n) for term, n in query_term_counts(query_text).items()}
    num_docs = backend.num_docs
    return rm3_expand(
        query_terms,
        docs,
        fb_docs=settings.fb_docs,
        fb_terms=settings.fb_terms,
        original_query_weight=settings.original_query_weight,
        doc_freq=backend.doc_freq if num_docs > 0 else None,
        num_docs=num_docs,
    )


def expand_vector(
    query_vector: NDArray[np.float32],
    feedback: Sequence[ScoredDoc],
    settings: PrfSettings,
    backend: PrfBackend,
) -> NDArray[np.float32]:
    """The vector-PRF query vector from the top ``vector_depth`` documents of ``feedback``."""
    ordinals = [doc.ordinal for doc in feedback[: settings.vector_depth]]
    vectors = backend.doc_vectors(ordinals)
    if settings.vector_method is VectorPrfMethod.ROCCHIO:
        return vector_prf_rocchio(
            query_vector, vectors, alpha=settings.rocchio_alpha, beta=settings.rocchio_beta
        )
    return vector_prf_average(query_vector, vectors)


def _as_scored(fused: Sequence[FusedDoc]) -> list[ScoredDoc]:
    return [ScoredDoc(doc.ordinal, doc.score) for doc in fused]


def run_prf(query: Query, first: FirstRound, backend: PrfBackend, rank: RankLists) -> PrfResult:
    """Apply ``query.prf`` to a first round; returns the final ranked list (not trimmed).

    Raises:
        ValueError: a PRF setting out of range (a programming error: `Query`s come from
            `engine.request.resolve_query`, which checks them first).
    """
    settings = applicable(query.prf, query.mode)
    rm3_on = settings.rm3 and first.sparse is not None
    vector_on = (
        settings.vector_method is not VectorPrfMethod.NONE
        and first.dense is not None
        and first.query_vector is not None
    )
    stage = settings.hybrid_stage
    fused_feedback = query.mode is RetrievalMode.HYBRID and stage is not PrfStage.AFTER
    sparse_feedback: Sequence[ScoredDoc]
    dense_feedback: Sequence[ScoredDoc]
    if fused_feedback:
        first_fused = _as_scored(rank(first.sparse, first.dense))
        sparse_feedback, dense_feedback = first_fused, first_fused
    else:
        sparse_feedback, dense_feedback = first.sparse or [], first.dense or []

    sparse, dense = first.sparse, first.dense
    expansion: dict[str, float] = {}
    native = None
    if rm3_on and isinstance(backend, NativeRm3Backend):
        native = backend.native_rm3(query.text, settings, first.sparse_depth)
    if native is not None:
        sparse, expansion = native
    elif rm3_on:
        expansion = expand_rm3(query.text, sparse_feedback, settings, backend)
        sparse = backend.search_sparse(expansion, first.sparse_depth)
    if vector_on:
        assert first.query_vector is not None
        vector = expand_vector(first.query_vector, dense_feedback, settings, backend)
        dense = backend.search_dense(vector, first.dense_depth)

    if query.mode is RetrievalMode.HYBRID and stage is PrfStage.BEFORE and rm3_on != vector_on:
        # Interpolation before PRF only: the one PRF arm's second round is the result.
        ranked = rank(sparse, None) if rm3_on else rank(None, dense)
    else:
        ranked = rank(sparse, dense)
    searched = [(term, weight) for term, weight in expansion.items() if weight > 0]
    heaviest_first = dict(sorted(searched, key=lambda item: (-item[1], item[0])))
    return PrfResult(ranked=ranked, applied=settings, expansion_terms=heaviest_first)
