"""Single-arm candidate lists that do not depend on how deep they were cut.

An arm's top ``depth`` breaks ties at the cut its own way (tantivy by document address, the
dense index by ordinal), while results order ties by external id. A page of a single-arm query
fetches ``offset + top_k`` candidates, so two pages cut the arm at different depths: were a
group of tied documents split by the cut, the two pages could hold different members of it, and
consecutive pages would overlap or skip a hit. Fetching every document tied with the last one
kept, then ordering by (score descending, id ascending), makes the first ``depth`` entries
those of the arm's full ranking, whatever the depth.

Hybrid lists are cut at the fixed fusion depths, the same for every page, but which of a group
of tied documents straddling that cut enters fusion must not depend on where the index stores
them either (upsert order; a sharded collection's shards store them apart): `cut_by_id` takes
the arm's best ``depth`` by (score descending, id ascending). Its probe is one entry deeper
than the cut, and it widens only when that entry ties with the last one kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hybridsearch.types import RankedList, ScoredDoc

#: Runs the arm for its best ``limit`` documents, by descending score.
ArmSearch = Callable[[int], Sequence[ScoredDoc]]


def as_ranked(hits: Sequence[ScoredDoc]) -> RankedList:
    """``hits`` as a `RankedList` (the arms' own lists already are)."""
    if isinstance(hits, RankedList):
        return hits
    return RankedList([h.ordinal for h in hits], [h.score for h in hits])


def with_ties(
    search: ArmSearch, depth: int, probe: Sequence[ScoredDoc] | None = None
) -> RankedList:
    """The arm's best ``depth`` documents and every further one tied with the last of them.

    ``probe``: the arm's best ``depth + 1`` when already fetched (else fetched here). The list
    is widened (doubling) until its last entry scores below the ``depth``-th or the arm has no
    more; the entries below are dropped.
    """
    if depth <= 0:
        return RankedList([], [])
    limit = depth + 1
    hits = as_ranked(probe if probe is not None else search(limit))
    while len(hits) >= limit and hits.scores[limit - 1] >= hits.scores[depth - 1]:
        limit *= 2
        hits = as_ranked(search(limit))
    if len(hits) <= depth:
        return hits
    kept = int(np.count_nonzero(hits.scores >= hits.scores[depth - 1]))
    return hits[:kept]


def cut_by_id(
    search: ArmSearch,
    depth: int,
    doc_id: Callable[[int], str],
    probe: Sequence[ScoredDoc] | None = None,
) -> RankedList:
    """The arm's best ``depth`` documents by (score descending, id ascending): a tie at the
    cut is taken by id, not by storage order; `with_ties` (``probe`` as there) widens the
    list only when a tie crosses the cut."""
    hits = with_ties(search, depth, probe)
    if len(hits) <= depth:
        return hits
    return ties_by_id(hits, doc_id)[:depth]


def by_score_then_id(hits: RankedList, doc_id: Callable[[int], str]) -> RankedList:
    """``hits`` ordered by score descending, equal scores by external id ascending."""
    ordinals, scores = hits.ordinals.tolist(), hits.scores.tolist()
    order = sorted(range(len(ordinals)), key=lambda i: (-scores[i], doc_id(ordinals[i])))
    return RankedList(hits.ordinals[order], hits.scores[order])


def ties_by_id(hits: Sequence[ScoredDoc], doc_id: Callable[[int], str]) -> RankedList:
    """An arm's list (by descending score) with each run of equal scores ordered by id.

    A tie's order is otherwise the arm's own (tantivy's document address, the dense index's
    ordinal), so a document's rank in a fused list's explanation, and its RRF contribution,
    would differ from its rank when the arm runs alone. A list without ties is returned as
    it is; one with ties is re-sorted once by (score descending, id) — about 150 µs for a
    BM25 list of 300 on the sample index, on the hybrid path.
    """
    ranked = as_ranked(hits)
    scores = ranked.scores
    if len(scores) < 2:
        return ranked
    same = scores[1:] == scores[:-1]
    if not same.any():
        return ranked
    # Only the entries of tied runs move (the list is by descending score): look up their ids
    # alone and sort them by (run, id), one stable sort; a BM25 list of 1000 often has a few
    # ties, and looking up every id cost more than the rest of fusion.
    tied = np.zeros(len(scores), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    at = np.flatnonzero(tied)
    run = np.cumsum(~np.concatenate(([False], same))[at])  # a new run where a tie starts
    ordinals = ranked.ordinals
    ids = np.array([doc_id(o) for o in ordinals[at].tolist()])
    order = np.arange(len(scores))
    order[at] = at[np.lexsort((ids, run))]
    return RankedList(ordinals[order], scores[order])
