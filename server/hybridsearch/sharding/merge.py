"""One arm's candidates merged over shards into the list one index would have given.

Each shard returns its own best ``depth`` (`worker.ArmList`); the merged list is the best
``depth`` of their union by (score descending, id ascending), so it holds exactly the
documents an unsharded index ranks in its top ``depth`` when the scores are the same (dense
scores are; BM25 scores use each shard's own statistics). A single-arm ranking (``ties``)
keeps every document tied with the last one, as `engine.ties.with_ties` does on one index.

Shard-local ordinals become collection ordinals ``local * shard_count + shard``: unique over
the collection, and the owning shard is ``ordinal % shard_count``. A local ordinal means a
document only within one version of its shard (an upsert gives the document a new one, a
compaction renumbers them all), so this holds for the lists of one fan-out only. A later
fan-out of the same query (progressive streams' dense arm, PRF's second round) may be answered
by a newer version of a shard: its candidates are merged with ``known`` (id to the ordinal the
query already gave it), so a document keeps one ordinal for the whole query and a new one gets
an ordinal above `LATER_BASE` that no local ordinal reaches.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from hybridsearch.sharding.worker import ArmList
from hybridsearch.types import RankedList


def global_ordinal(local: int, shard: int, shard_count: int) -> int:
    """The collection ordinal of a shard's local ordinal."""
    return local * shard_count + shard


def shard_of_ordinal(ordinal: int, shard_count: int) -> tuple[int, int]:
    """(shard, local ordinal) of a collection ordinal."""
    return ordinal % shard_count, ordinal // shard_count


#: Ordinals a query gives documents first seen in a later fan-out start at this many times
#: the shard count: far above any shard's local ordinals.
LATER_BASE = 1 << 40


def merge_arm(
    lists: Mapping[int, ArmList],
    depth: int,
    shard_count: int,
    ids: dict[int, str],
    *,
    ties: bool = False,
    known: dict[str, int] | None = None,
) -> RankedList:
    """The best ``depth`` of every shard's list (collection ordinals); records each
    candidate's id in ``ids``.

    ``known``: the query's ordinals by id, for a later fan-out's lists (see the module
    docstring): a candidate keeps the ordinal it already has, a new one gets a fresh one
    (recorded in ``known`` too), owned by its shard as every ordinal is.
    """
    shards = sorted(lists)
    if not shards:
        return RankedList([], [])
    ordinals = np.concatenate(
        [lists[s].ordinals.astype(np.int64) * shard_count + s for s in shards]
    )
    scores = np.concatenate([lists[s].scores for s in shards])
    id_list = list(itertools.chain.from_iterable(lists[s].ids for s in shards))
    order = _by_score_then_id(scores, id_list)
    kept = min(depth, len(order))
    if ties and 0 < kept < len(order):
        kept = int(np.count_nonzero(scores[order] >= scores[order[kept - 1]]))
    order = order[:kept]
    if known is not None:
        kept_ordinals = _known_ordinals(ordinals[order], id_list, order, shard_count, known)
        for ordinal, position in zip(kept_ordinals.tolist(), order.tolist(), strict=True):
            ids[ordinal] = id_list[position]
        return RankedList(kept_ordinals, scores[order])
    merged = RankedList(ordinals[order], scores[order])
    kept_ids = map(id_list.__getitem__, order.tolist())
    ids.update(zip(merged.ordinals.tolist(), kept_ids, strict=True))
    return merged


def _known_ordinals(
    ordinals: NDArray[np.int64],
    id_list: list[str],
    order: NDArray[np.intp],
    shard_count: int,
    known: dict[str, int],
) -> NDArray[np.int64]:
    out = np.empty(len(order), dtype=np.int64)
    for j, (ordinal, position) in enumerate(zip(ordinals.tolist(), order.tolist(), strict=True)):
        doc_id = id_list[position]
        given = known.get(doc_id)
        if given is None:
            given = (LATER_BASE + len(known)) * shard_count + ordinal % shard_count
            known[doc_id] = given
        out[j] = given
    return out


def _by_score_then_id(scores: NDArray[np.float64], id_list: list[str]) -> NDArray[np.intp]:
    """Positions by score descending, then id: a numeric sort, and the ids compared only
    within runs of equal scores (a dense list has few or none; a BM25 list some)."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    same = np.flatnonzero(ranked[1:] == ranked[:-1])
    if same.size == 0:
        return order
    in_run = np.zeros(len(order), dtype=bool)
    in_run[same] = True
    in_run[same + 1] = True
    tied = order[in_run]  # the runs' positions, by score
    keys = np.array([id_list[i] for i in tied.tolist()], dtype=object)
    order[in_run] = tied[np.lexsort((keys, -scores[tied]))]
    return order
