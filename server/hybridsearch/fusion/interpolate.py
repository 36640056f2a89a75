"""Convex combination of normalised sparse and dense scores."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hybridsearch.fusion._lists import arm_columns, combine_sides
from hybridsearch.fusion.normalize import missing_floor, normalize_scores
from hybridsearch.types import FusedDoc, Normalization, ScoredDoc


def fuse_interpolate(
    sparse: Sequence[ScoredDoc],
    dense: Sequence[ScoredDoc],
    *,
    alpha: float,
    normalization: Normalization,
    doc_id: Callable[[int], str],
    limit: int | None = None,
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
    descending, ties by ``doc_id(ordinal)`` ascending; ``limit`` keeps only the best ``limit``
    (the same as cutting the full list).

    Raises:
        ValueError: ``alpha`` is not a finite number in [0, 1], or a list repeats an ordinal
            or holds a non-finite score (programming errors: requests are validated first,
            by `engine.request.resolve_query`).
    """
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be a finite number in [0, 1], got {alpha!r}")
    sparse_columns = arm_columns("sparse", sparse)
    dense_columns = arm_columns("dense", dense)

    sparse_norm = normalize_scores(sparse_columns.scores, normalization)
    dense_norm = normalize_scores(dense_columns.scores, normalization)
    return combine_sides(
        sparse_columns,
        dense_columns,
        sparse_shown=sparse_norm,
        dense_shown=dense_norm,
        sparse_part=(1.0 - alpha) * sparse_norm,
        dense_part=alpha * dense_norm,
        sparse_missing=(1.0 - alpha) * missing_floor(sparse_norm, normalization),
        dense_missing=alpha * missing_floor(dense_norm, normalization),
        doc_id=doc_id,
        limit=limit,
    )
