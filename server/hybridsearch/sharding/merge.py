"""One arm's candidates merged over shards into the list one index would have given.

Each shard returns its own best ``depth`` (`worker.ArmList`); the merged list is the best
``depth`` of their union by (score descending, id ascending), so it holds exactly the
documents an unsharded index ranks in its top ``depth`` when the scores are the same (dense
scores are; BM25 scores use each shard's own statistics). A single-arm ranking (``ties``)
keeps every document tied with the last one, as `engine.ties.with_ties` does on one index.

Shard-local ordinals become collection ordinals ``local * shard_count + shard``: unique over
the collection, and the owning shard is ``ordinal % shard_count``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hybridsearch.sharding.worker import ArmList
from hybridsearch.types import RankedList


def global_ordinal(local: int, shard: int, shard_count: int) -> int:
    """The collection ordinal of a shard's local ordinal."""
    return local * shard_count + shard


def shard_of_ordinal(ordinal: int, shard_count: int) -> tuple[int, int]:
    """(shard, local ordinal) of a collection ordinal."""
    return ordinal % shard_count, ordinal // shard_count


def merge_arm(
    lists: Mapping[int, ArmList],
    depth: int,
    shard_count: int,
    ids: dict[int, str],
    *,
    ties: bool = False,
) -> RankedList:
    """The best ``depth`` of every shard's list (collection ordinals); records each
    candidate's id in ``ids``."""
    shards = sorted(lists)
    if not shards:
        return RankedList([], [])
    ordinals = np.concatenate(
        [lists[s].ordinals.astype(np.int64) * shard_count + s for s in shards]
    )
    scores = np.concatenate([lists[s].scores for s in shards])
    id_list = [doc_id for s in shards for doc_id in lists[s].ids]
    order = np.lexsort((np.array(id_list, dtype=object), -scores)) if id_list else np.array([], int)
    kept = min(depth, len(order))
    if ties and 0 < kept < len(order):
        kept = int(np.count_nonzero(scores[order] >= scores[order[kept - 1]]))
    order = order[:kept]
    merged = RankedList(ordinals[order], scores[order])
    for ordinal, i in zip(merged.ordinals.tolist(), order.tolist(), strict=True):
        ids[ordinal] = id_list[i]
    return merged
