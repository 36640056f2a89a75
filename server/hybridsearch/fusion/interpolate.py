"""Convex combination of normalised sparse and dense scores."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hybridsearch.errors import InvalidArgumentError
from hybridsearch.fusion._lists import check_arm, sort_fused, union_ordinals
from hybridsearch.fusion.normalize import missing_floor, normalize_scores
from hybridsearch.types import ArmScore, FusedDoc, Normalization, ScoredDoc


def fuse_interpolate(
    sparse: Sequence[ScoredDoc],
    dense: Sequence[ScoredDoc],
    *,
    alpha: float,
    normalization: Normalization,
    doc_id: Callable[[int], str],
) -> list[FusedDoc]:
    """Fuse two ranked lists by interpolating their normalised scores.

    ``score(d) = alpha * dense_norm(d) + (1 - alpha) * sparse_norm(d)`` over the union of
    both lists, ``alpha`` being the weight of the dense side (the convex combination of
    Bruch, Gai & Ingber, ACM TOIS 2023; Ma et al., "A Replication Study of Dense Passage
    Retriever", 2021, for the hybrid of BM25 and a dense retriever). Each list is normalised
    on its own with :func:`normalize_scores`; a document a list did not retrieve gets that
    list's :func:`missing_floor`.

    Ranks are 1-based positions in the lists as given (the lists are not re-sorted). Every
    fused document carries an :class:`ArmScore` (raw score, rank, normalised score) for each
    side that retrieved it and ``None`` for the other. The result is sorted by fused score
    descending, ties by ``doc_id(ordinal)`` ascending.

    Raises:
        InvalidArgumentError: ``fusion.alpha`` is not a finite number in [0, 1].
        ValueError: a list repeats an ordinal or holds a non-finite score.
    """
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise InvalidArgumentError.single(
            "fusion.alpha", f"must be a finite number in [0, 1], got {alpha!r}"
        )
    check_arm("sparse", sparse)
    check_arm("dense", dense)

    sparse_norm = normalize_scores([hit.score for hit in sparse], normalization)
    dense_norm = normalize_scores([hit.score for hit in dense], normalization)
    sparse_floor = missing_floor(sparse_norm, normalization)
    dense_floor = missing_floor(dense_norm, normalization)
    sparse_arm = {
        hit.ordinal: ArmScore(hit.score, rank, float(sparse_norm[rank - 1]))
        for rank, hit in enumerate(sparse, start=1)
    }
    dense_arm = {
        hit.ordinal: ArmScore(hit.score, rank, float(dense_norm[rank - 1]))
        for rank, hit in enumerate(dense, start=1)
    }

    fused: list[FusedDoc] = []
    for ordinal in union_ordinals(sparse, dense):
        s = sparse_arm.get(ordinal)
        d = dense_arm.get(ordinal)
        s_value = s.normalized_score if s is not None else sparse_floor
        d_value = d.normalized_score if d is not None else dense_floor
        score = alpha * d_value + (1.0 - alpha) * s_value
        fused.append(FusedDoc(ordinal=ordinal, score=score, sparse=s, dense=d))
    return sort_fused(fused, doc_id)
