"""RM3 query expansion for the sparse arm (pseudo-relevance feedback).

The relevance model RM1 (Lavrenko & Croft, "Relevance-Based Language Models", SIGIR 2001)
estimates ``P(t | R) ∝ Σ_{d ∈ F} P(t | d) · P(q | d)`` over the feedback documents ``F``;
RM3 (Abdul-Jaleel et al., "UMass at TREC 2004: Novelty and HARD", TREC 2004) interpolates it
with the original query. This module follows Anserini's ``Rm3Reranker`` (defaults fb_docs 10,
fb_terms 10, original_query_weight 0.5), which uses the retrieval score as ``P(q | d)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

# Anserini keeps feedback terms of 2 to 20 characters made only of [a-z0-9].
_FEEDBACK_TERM = re.compile(r"[a-z0-9]{2,20}")
# Anserini skips a feedback document whose pruned vector has (almost) no mass.
_MIN_DOC_NORM = 0.001


@dataclass(frozen=True, slots=True)
class FeedbackDoc:
    """One feedback document: its first-pass retrieval score and the term frequencies of its
    analysed stored text (the same analyser as the index)."""

    score: float
    term_freqs: Mapping[str, int]


def _top_terms(weights: Mapping[str, float], size: int) -> dict[str, float]:
    """The ``size`` heaviest terms; equal weights by term ascending (Anserini: hash order)."""
    ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:size])


def _unit_l1(weights: Mapping[str, float]) -> dict[str, float]:
    norm = sum(abs(w) for w in weights.values())
    if norm <= 0.0:
        return {}
    return {term: w / norm for term, w in weights.items()}


def _validate(fb_docs: int, fb_terms: int, original_query_weight: float) -> None:
    for name, count in (("fb_docs", fb_docs), ("fb_terms", fb_terms)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {count!r}")
    weight = original_query_weight
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        raise ValueError(f"original_query_weight must be a finite number in [0, 1], got {weight!r}")


def rm3_expand(
    query_terms: Mapping[str, float],
    feedback: Sequence[FeedbackDoc],
    *,
    fb_docs: int = 10,
    fb_terms: int = 10,
    original_query_weight: float = 0.5,
    stopwords: Collection[str] | None = None,
    doc_freq: Callable[[str], int] | None = None,
    num_docs: int = 0,
    max_df_ratio: float = 0.1,
) -> dict[str, float]:
    """Expand a query with RM3; returns term → weight (weights sum to 1).

    With ``F`` the first ``fb_docs`` feedback documents (in the order given), ``tf(t, d)`` a
    document's term frequency and ``s_d`` its retrieval score::

        v_d(t)   = tf(t, d) for the fb_terms most frequent feedback terms of d, else 0
        RM1(t)   ∝ Σ_{d ∈ F} s_d · v_d(t) / ‖v_d‖₁         (documents with ‖v_d‖₁ ≈ 0 skipped)
        RM1      pruned to its fb_terms heaviest terms, then scaled to sum 1
        q(t)     = query_terms[t] / Σ query_terms           (analysed query term counts)
        RM3(t)   = w · q(t) + (1 − w) · RM1(t),   w = original_query_weight

    as Anserini's ``Rm3Reranker`` computes it (including its per-document pruning before the
    L1 normalisation). A term is a feedback term when, like Anserini, it has 2 to 20
    characters of ``[a-z0-9]`` only (purely numeric terms are *kept*, as in Anserini), is not
    in ``stopwords`` (none by default), and — only when ``doc_freq`` is given — occurs in at
    most ``max_df_ratio`` of the ``num_docs`` indexed documents (Anserini's stopword proxy,
    10 %). Equal weights are ordered by term, so the result is deterministic.

    When there is no usable feedback the normalised query is returned, and with an empty
    query the normalised relevance model: Anserini would scale that one side by ``w`` or
    ``1 − w``, which changes no ranking.

    Raises:
        ValueError: ``fb_docs`` or ``fb_terms`` < 1, ``original_query_weight`` outside [0, 1]
            or not finite, a non-finite score or query weight, or ``doc_freq`` without
            ``num_docs`` (programming errors: requests are validated first, by
            `engine.request.resolve_query`).
    """
    _validate(fb_docs, fb_terms, original_query_weight)
    if doc_freq is not None and num_docs < 1:
        raise ValueError("doc_freq needs num_docs >= 1")
    if not all(math.isfinite(w) for w in query_terms.values()):
        raise ValueError("query term weights must be finite")
    docs = list(feedback[:fb_docs])
    if not all(math.isfinite(doc.score) for doc in docs):
        raise ValueError("feedback scores must be finite")
    excluded = frozenset(stopwords or ())

    def is_feedback_term(term: str) -> bool:
        if _FEEDBACK_TERM.fullmatch(term) is None or term in excluded:
            return False
        return doc_freq is None or doc_freq(term) / num_docs <= max_df_ratio

    relevance: dict[str, float] = {}
    for doc in docs:
        vector = _top_terms(
            {t: float(tf) for t, tf in doc.term_freqs.items() if tf > 0 and is_feedback_term(t)},
            fb_terms,
        )
        norm = sum(vector.values())
        if norm <= _MIN_DOC_NORM:
            continue
        for term, tf in vector.items():
            relevance[term] = relevance.get(term, 0.0) + tf / norm * doc.score
    relevance_model = _unit_l1(_top_terms(relevance, fb_terms))
    query = _unit_l1(query_terms)

    if not relevance_model:
        return query
    if not query:
        return relevance_model
    w = original_query_weight
    return {
        term: w * query.get(term, 0.0) + (1.0 - w) * relevance_model.get(term, 0.0)
        for term in sorted(query.keys() | relevance_model.keys())
    }
