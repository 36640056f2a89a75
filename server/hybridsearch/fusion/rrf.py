"""Reciprocal rank fusion."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from hybridsearch.fusion._lists import arm_columns, combine_sides
from hybridsearch.types import FusedDoc, ScoredDoc


def _check_weight(name: str, weight: float) -> None:
    if not (math.isfinite(weight) and weight >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {weight!r}")


def fuse_rrf(
    sparse: Sequence[ScoredDoc],
    dense: Sequence[ScoredDoc],
    *,
    k: int = 60,
    sparse_weight: float = 1.0,
    dense_weight: float = 1.0,
    doc_id: Callable[[int], str],
    limit: int | None = None,
) -> list[FusedDoc]:
    """Fuse two ranked lists by (weighted) reciprocal rank fusion.

    ``score(d) = sum over lists L retrieving d of  w_L / (k + rank_L(d))`` with 1-based
    ranks: Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and
    individual Rank Learning Methods", SIGIR 2009, who fix ``k = 60`` and unit weights.
    Scores are ignored; ranks are positions in the lists as given. Each fused document's
    :class:`ArmScore` carries that side's raw score, rank and, as ``normalized_score``, its
    contribution ``w / (k + rank)``. Sorted by fused score descending, ties by
    ``doc_id(ordinal)`` ascending; ``limit`` keeps only the best ``limit``.

    Raises:
        ValueError: ``k`` < 1 or not an integer, a weight negative or not finite, or a list
            repeats an ordinal or holds a non-finite score (programming errors: requests are
            validated first, by `engine.request.resolve_query`).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    _check_weight("sparse_weight", sparse_weight)
    _check_weight("dense_weight", dense_weight)
    sparse_columns = arm_columns("sparse", sparse)
    dense_columns = arm_columns("dense", dense)

    sparse_rrf = sparse_weight / (k + np.arange(1, len(sparse) + 1, dtype=np.float64))
    dense_rrf = dense_weight / (k + np.arange(1, len(dense) + 1, dtype=np.float64))
    return combine_sides(
        sparse_columns,
        dense_columns,
        sparse_shown=sparse_rrf,
        dense_shown=dense_rrf,
        sparse_part=sparse_rrf,
        dense_part=dense_rrf,
        sparse_missing=0.0,
        dense_missing=0.0,
        doc_id=doc_id,
        limit=limit,
    )
