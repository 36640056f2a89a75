"""Checks and ordering shared by the fusion rules (private)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hybridsearch.types import FusedDoc, ScoredDoc


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


def union_ordinals(sparse: Sequence[ScoredDoc], dense: Sequence[ScoredDoc]) -> list[int]:
    """Every ordinal of either list, each once (sparse order first, then dense-only ones)."""
    ordinals = [hit.ordinal for hit in sparse]
    in_sparse = set(ordinals)
    ordinals.extend(hit.ordinal for hit in dense if hit.ordinal not in in_sparse)
    return ordinals


def sort_fused(fused: list[FusedDoc], doc_id: Callable[[int], str]) -> list[FusedDoc]:
    """Order by fused score descending; equal scores by external id ascending (deterministic)."""
    ids = {doc.ordinal: doc_id(doc.ordinal) for doc in fused}
    return sorted(fused, key=lambda doc: (-doc.score, ids[doc.ordinal]))
