"""The sharded front's cache of BM25 term statistics, per shard and generation.

With ``--bm25-statistics collection`` each query's BM25 idf is the collection's: the
front sends every shard the collection's document frequency of the query's terms (and the
collection's document count), summed over shards. `TermStatsCache` keeps each shard's own
statistics as of one of its committed generations, so a steady query stream needs no call
for them: every shard's answer carries its own statistics of the query's terms and its
generation (`worker.ShardArms.term_stats`), which refresh the cache as they arrive. An
answer of another generation (a write or a compaction on that shard) replaces the shard's
entry; the front then knows the sums it sent were stale and asks again once
(`searcher.ShardedSearcher.fan_out_arms`). While a follower replica lags its shard's writer
(up to ``--follow-interval-s`` after a commit), replicas answer at two generations: a query
may then be asked twice, and the second answer is kept even if it is of yet another
generation (its scores are then within that lag, as every read of a follower is).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from hybridsearch.sharding.worker import CollectionStats, TermStats

#: Terms kept per shard entry; past it the entry starts again from the newest answer.
MAX_TERMS = 200_000


class TermStatsCache:
    """Each shard's statistics of the terms seen, as of its latest known generation.

    An answer of the generation held adds its terms to the entry in place (a query's few
    terms: no copy of an entry that may hold ``max_terms``).
    """

    def __init__(self, shard_count: int, *, max_terms: int = MAX_TERMS) -> None:
        self._shard_count = shard_count
        self._max_terms = max_terms
        self._lock = threading.Lock()
        self._entries: dict[int, TermStats] = {}

    def collection(self, terms: Iterable[str]) -> CollectionStats | None:
        """The terms' statistics summed over every shard; None when a shard's are unknown."""
        wanted = list(terms)
        freq: dict[str, int] = {}
        with self._lock:
            entries = list(self._entries.values())
            if len(entries) < self._shard_count:
                return None
            for term in wanted:
                total = 0
                for entry in entries:
                    n = entry.doc_freq.get(term)
                    if n is None:
                        return None
                    total += n
                freq[term] = total
        return CollectionStats(freq, sum(e.num_docs for e in entries))

    def update(self, shard: int, stats: TermStats) -> bool:
        """Record a shard's answer; True when it is of another generation than the entry
        held (the entry is then replaced: the shard committed a write or a compaction)."""
        with self._lock:
            held = self._entries.get(shard)
            if held is None or held.generation != stats.generation:
                self._entries[shard] = TermStats(
                    stats.generation, dict(stats.doc_freq), stats.num_docs
                )
                return held is not None
            if len(held.doc_freq) + len(stats.doc_freq) > self._max_terms:
                self._entries[shard] = TermStats(
                    held.generation, dict(stats.doc_freq), held.num_docs
                )
            else:
                held.doc_freq.update(stats.doc_freq)  # the entry's own dict (copied above)
            return False

    def generations(self) -> dict[int, int]:
        """The generation each shard's entry is of."""
        with self._lock:
            return {shard: e.generation for shard, e in self._entries.items()}
