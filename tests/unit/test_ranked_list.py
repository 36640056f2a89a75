"""RankedList: an arm's list as arrays that reads like a list of ScoredDoc."""

from __future__ import annotations

import numpy as np
import pytest

from hybridsearch.types import RankedList, ScoredDoc


def test_reads_as_a_sequence_of_scored_docs() -> None:
    ranked = RankedList(np.array([7, 3, 9]), np.array([2.5, 1.0, 0.25], dtype=np.float32))
    assert len(ranked) == 3
    assert ranked[0] == ScoredDoc(7, 2.5) and ranked[-1] == ScoredDoc(9, 0.25)
    assert list(ranked) == [ScoredDoc(7, 2.5), ScoredDoc(3, 1.0), ScoredDoc(9, 0.25)]
    assert [d.ordinal for d in ranked] == [7, 3, 9]
    assert all(type(d.ordinal) is int and type(d.score) is float for d in ranked)
    head = ranked[:2]
    assert isinstance(head, RankedList) and list(head) == list(ranked)[:2]


def test_equals_any_sequence_of_the_same_pairs() -> None:
    ranked = RankedList([1, 2], [0.5, 0.25])
    assert ranked == [ScoredDoc(1, 0.5), ScoredDoc(2, 0.25)]
    assert ranked == [(1, 0.5), (2, 0.25)]
    assert ranked != [ScoredDoc(1, 0.5)]
    assert ranked != [ScoredDoc(2, 0.25), ScoredDoc(1, 0.5)]
    assert RankedList([], []) == []


def test_float32_scores_keep_their_value() -> None:
    score = np.float32(0.1)
    assert RankedList([4], np.array([score]))[0].score == float(score)


def test_mismatched_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="2 ordinals but 1 scores"):
        RankedList([1, 2], [0.5])
