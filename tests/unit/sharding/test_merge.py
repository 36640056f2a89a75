"""Merging one arm over shards (`sharding.merge`) and a shard's list as it travels to the
front (`worker.ArmList` pickled: what a Ray replica sends)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hybridsearch.sharding.merge import LATER_BASE, merge_arm
from hybridsearch.sharding.worker import ArmList


def _arm(pairs: list[tuple[int, str, float]]) -> ArmList:
    return ArmList(
        np.array([o for o, _, _ in pairs], dtype=np.int64),
        [i for _, i, _ in pairs],
        np.array([s for _, _, s in pairs], dtype=np.float64),
    )


def test_merged_by_score_then_id_over_shards() -> None:
    rng = np.random.default_rng(7)
    lists = {}
    everything = []
    for shard in range(3):
        scores = np.round(rng.uniform(0, 5, 200), 1)  # many ties within and across shards
        ids = [f"d{shard}-{rng.integers(10**6):06d}-{k}" for k in range(200)]
        order = np.argsort(-scores, kind="stable")  # a shard's own order: by score only
        pairs = [(int(k), ids[k], float(scores[k])) for k in order]
        lists[shard] = _arm(pairs)
        everything += [(-s, i, o * 3 + shard) for o, i, s in pairs]
    ids: dict[int, str] = {}
    merged = merge_arm(lists, 250, 3, ids)
    expected = sorted(everything)[:250]
    assert merged.ordinals.tolist() == [o for _, _, o in expected]
    assert merged.scores.tolist() == [-s for s, _, _ in expected]
    assert all(ids[o] == i for _, i, o in expected)


def test_single_arm_cut_keeps_every_tie_with_the_last() -> None:
    lists = {0: _arm([(0, "b", 3.0), (1, "c", 2.0)]), 1: _arm([(0, "a", 2.0), (1, "d", 1.0)])}
    merged = merge_arm(lists, 2, 2, {}, ties=True)
    # Collection ordinals local * 2 + shard: b 0, c 2, a 1, d 3.
    assert merged.ordinals.tolist() == [0, 1, 2]  # b, then a and c tied at 2.0 (by id)
    assert merge_arm(lists, 2, 2, {}).ordinals.tolist() == [0, 1]


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [(5, "", 1.5)],
        [(3, "a", 2.0), (9, "b\x00c", 1.0)],  # an id holding the packing separator
        [(2**40, "big", 0.1), (1, "small", 1 / 3)],  # needs int64, float64
        [(7, "ünï", np.float32(0.3).item()), (8, "x y", -1.0)],
    ],
)
def test_arm_list_pickles_to_the_same_list(pairs: list[tuple[int, str, float]]) -> None:
    arm = _arm(pairs)
    back = pickle.loads(pickle.dumps(arm, protocol=pickle.HIGHEST_PROTOCOL))
    assert back.ids == arm.ids
    assert back.ordinals.dtype == np.int64 and back.scores.dtype == np.float64
    assert back.ordinals.tolist() == arm.ordinals.tolist()
    assert back.scores.tolist() == arm.scores.tolist()


def test_arm_list_packs_compactly() -> None:
    n = 1000
    arm = ArmList(
        np.arange(n, dtype=np.int64),
        [f"document-{i:05d}" for i in range(n)],
        np.linspace(1, 0, n).astype(np.float32).astype(np.float64),
    )
    plain = pickle.dumps((arm.ordinals, arm.ids, arm.scores), protocol=pickle.HIGHEST_PROTOCOL)
    packed = pickle.dumps(arm, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(packed) < 0.75 * len(plain)


def test_a_later_fan_out_keeps_each_document_s_ordinal_and_never_reuses_one() -> None:
    ids: dict[int, str] = {}
    first = merge_arm(
        {0: _arm([(0, "a", 3.0), (1, "b", 2.0)]), 1: _arm([(0, "c", 1.0)])}, 10, 2, ids
    )
    assert first.ordinals.tolist() == [0, 2, 1]
    assert [ids[o] for o in (0, 2, 1)] == ["a", "b", "c"]
    # The shards' next versions: "a" renumbered to local 5, local 0 now holds "d", a new doc.
    known = {doc_id: ordinal for ordinal, doc_id in ids.items()}
    later = merge_arm(
        {0: _arm([(0, "d", 4.0), (5, "a", 3.5)]), 1: _arm([(0, "c", 1.5)])}, 10, 2, ids, known=known
    )
    a, c, d = known["a"], known["c"], known["d"]
    assert later.ordinals.tolist() == [d, a, c]
    assert (a, c) == (0, 1)  # as in the first fan-out
    assert d >= LATER_BASE * 2 and d % 2 == 0  # a new ordinal, still owned by shard 0
    assert ids[0] == "a" and ids[d] == "d"
