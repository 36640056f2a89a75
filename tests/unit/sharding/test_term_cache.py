"""The sharded front's cache of each shard's BM25 term statistics (`sharding.term_cache`)."""

from __future__ import annotations

from hybridsearch.sharding.term_cache import TermStatsCache
from hybridsearch.sharding.worker import CollectionStats, TermStats


def test_sums_over_shards_once_every_shard_and_term_is_known() -> None:
    cache = TermStatsCache(2)
    assert cache.update(0, TermStats(4, {"flow": 3}, 10)) is False
    assert cache.collection(["flow"]) is None  # shard 1 unknown
    cache.update(1, TermStats(2, {"flow": 1, "plate": 2}, 7))
    assert cache.collection(["flow"]) == CollectionStats({"flow": 4}, 17)
    assert cache.collection(["plate"]) is None  # shard 0 never answered for it


def test_same_generation_adds_terms_another_replaces() -> None:
    cache = TermStatsCache(1)
    cache.update(0, TermStats(1, {"a": 1}, 5))
    assert cache.update(0, TermStats(1, {"b": 2}, 5)) is False
    assert cache.collection(["a", "b"]) == CollectionStats({"a": 1, "b": 2}, 5)
    assert cache.update(0, TermStats(2, {"b": 3}, 6)) is True  # the shard committed
    assert cache.collection(["a"]) is None
    assert cache.collection(["b"]) == CollectionStats({"b": 3}, 6)
    assert cache.generations() == {0: 2}


def test_an_entry_past_max_terms_starts_again() -> None:
    cache = TermStatsCache(1, max_terms=3)
    cache.update(0, TermStats(1, {"a": 1, "b": 1}, 5))
    cache.update(0, TermStats(1, {"c": 1, "d": 1}, 5))
    assert cache.collection(["c", "d"]) == CollectionStats({"c": 1, "d": 1}, 5)
    assert cache.collection(["a"]) is None


def test_an_answer_does_not_alias_the_entry() -> None:
    cache = TermStatsCache(1)
    answer = {"a": 1}
    cache.update(0, TermStats(1, answer, 5))
    cache.update(0, TermStats(1, {"b": 1}, 5))
    assert answer == {"a": 1}
