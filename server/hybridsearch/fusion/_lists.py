"""Checks and ordering shared by the fusion rules (private)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from hybridsearch.types import ArmScore, FusedDoc, ScoredDoc


def check_arm(name: str, hits: Sequence[ScoredDoc]) -> None:
    """Reject a list that no arm should produce: a repeated ordinal or a non-finite score.

    These are programming errors of an arm, not caller input, hence ``ValueError``.
    """
    seen: set[int] = set()
    for hit in hits:
        if hit.ordinal in seen:
            raise ValueError(f"{name} list repeats ordinal {hit.ordinal}")
        if not math.isfinite(hit.score):
            raise ValueError(f"{name} list has a non-finite score for ordinal {hit.ordinal}")
        seen.add(hit.ordinal)


def _ordinals(hits: Sequence[ScoredDoc]) -> NDArray[np.int64]:
    return np.fromiter((hit.ordinal for hit in hits), dtype=np.int64, count=len(hits))


def combine_sides(
    sparse: Sequence[ScoredDoc],
    dense: Sequence[ScoredDoc],
    *,
    sparse_shown: NDArray[np.float64],
    dense_shown: NDArray[np.float64],
    sparse_part: NDArray[np.float64],
    dense_part: NDArray[np.float64],
    sparse_missing: float,
    dense_missing: float,
    doc_id: Callable[[int], str],
    limit: int | None,
) -> list[FusedDoc]:
    """Fused score = sparse part + dense part over the union of both lists, best first.

    ``*_part[i]`` is the contribution of the i-th hit of that list, ``*_missing`` the
    contribution of a document the list did not retrieve, ``*_shown[i]`` the normalised score
    its `ArmScore` reports. Scores are summed with numpy over the union; only the ``limit``
    best documents (all when None) become `FusedDoc` objects, ordered by fused score
    descending and equal scores by ``doc_id`` ascending (ties at the cut are resolved by id
    too, so the result does not depend on ``limit``).
    """
    if limit is not None and limit <= 0:
        return []
    sparse_ordinals, dense_ordinals = _ordinals(sparse), _ordinals(dense)
    union = np.union1d(sparse_ordinals, dense_ordinals)
    sparse_side = np.full(len(union), sparse_missing, dtype=np.float64)
    sparse_side[np.searchsorted(union, sparse_ordinals)] = sparse_part
    dense_side = np.full(len(union), dense_missing, dtype=np.float64)
    dense_side[np.searchsorted(union, dense_ordinals)] = dense_part
    scores = sparse_side + dense_side  # one addition per document: exact, order-independent
    chosen = np.arange(len(union))
    if limit is not None and limit < len(union):
        cut = np.partition(scores, len(union) - limit)[len(union) - limit]
        chosen = np.flatnonzero(scores >= cut)  # keeps every tie at the cut
    ranked = sorted(chosen.tolist(), key=lambda i: (-scores[i], doc_id(int(union[i]))))
    if limit is not None:
        ranked = ranked[:limit]
    sparse_rank = {hit.ordinal: rank for rank, hit in enumerate(sparse)}
    dense_rank = {hit.ordinal: rank for rank, hit in enumerate(dense)}
    fused = []
    for i in ranked:
        ordinal = int(union[i])
        s = sparse_rank.get(ordinal)
        d = dense_rank.get(ordinal)
        fused.append(
            FusedDoc(
                ordinal=ordinal,
                score=float(scores[i]),
                sparse=None
                if s is None
                else ArmScore(sparse[s].score, s + 1, float(sparse_shown[s])),
                dense=None if d is None else ArmScore(dense[d].score, d + 1, float(dense_shown[d])),
            )
        )
    return fused
