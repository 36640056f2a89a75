from __future__ import annotations

import math

import pytest

from hybridsearch.fusion import fuse_rrf
from hybridsearch.types import ArmScore, ScoredDoc

SPARSE = [ScoredDoc(1, 10.0), ScoredDoc(2, 6.0), ScoredDoc(3, 2.0)]
DENSE = [ScoredDoc(2, 0.9), ScoredDoc(4, 0.7), ScoredDoc(1, 0.5)]


def doc_id(ordinal: int) -> str:
    return f"doc{ordinal}"


def test_rrf_k60_hand_computed() -> None:
    fused = fuse_rrf(SPARSE, DENSE, doc_id=doc_id)
    assert [d.ordinal for d in fused] == [2, 1, 4, 3]
    assert [d.score for d in fused] == pytest.approx(
        [1 / 62 + 1 / 61, 1 / 61 + 1 / 63, 1 / 62, 1 / 63]
    )
    by_ordinal = {d.ordinal: d for d in fused}
    assert by_ordinal[1].sparse == ArmScore(10.0, 1, 1 / 61)
    assert by_ordinal[1].dense == ArmScore(0.5, 3, 1 / 63)
    assert by_ordinal[3].dense is None
    assert by_ordinal[4].sparse is None


def test_rrf_weights() -> None:
    fused = fuse_rrf(SPARSE, DENSE, sparse_weight=2.0, dense_weight=0.5, doc_id=doc_id)
    assert [d.ordinal for d in fused] == [1, 2, 3, 4]
    assert [d.score for d in fused] == pytest.approx(
        [2 / 61 + 0.5 / 63, 2 / 62 + 0.5 / 61, 2 / 63, 0.5 / 62]
    )
    assert fused[0].dense is not None
    assert fused[0].dense.normalized_score == pytest.approx(0.5 / 63)


def test_rrf_small_k() -> None:
    fused = fuse_rrf(SPARSE, DENSE, k=1, doc_id=doc_id)
    assert fused[0].ordinal == 2
    assert fused[0].score == pytest.approx(1 / 3 + 1 / 2)


def test_rrf_zero_weight_reproduces_other_arm() -> None:
    fused = fuse_rrf(SPARSE, DENSE, sparse_weight=0.0, doc_id=doc_id)
    assert [d.ordinal for d in fused] == [2, 4, 1, 3]
    assert fused[-1].score == 0.0


def test_rrf_empty_and_one_sided() -> None:
    assert fuse_rrf([], [], doc_id=doc_id) == []
    fused = fuse_rrf([], DENSE, doc_id=doc_id)
    assert [d.ordinal for d in fused] == [2, 4, 1]
    assert all(d.sparse is None for d in fused)


def test_rrf_ties_by_id() -> None:
    names = {7: "x", 8: "a"}
    fused = fuse_rrf([ScoredDoc(7, 1.0)], [ScoredDoc(8, 1.0)], doc_id=names.__getitem__)
    assert [d.ordinal for d in fused] == [8, 7]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"k": 0}, "k"),
        ({"k": -5}, "k"),
        ({"sparse_weight": -1.0}, "sparse_weight"),
        ({"sparse_weight": math.nan}, "sparse_weight"),
        ({"dense_weight": math.inf}, "dense_weight"),
    ],
)
def test_rrf_bad_parameters_are_programming_errors(kwargs: dict[str, float], name: str) -> None:
    # Requests are validated before fusion (engine.request); here it is a caller's bug.
    with pytest.raises(ValueError, match=f"^{name} must be"):
        fuse_rrf(SPARSE, DENSE, doc_id=doc_id, **kwargs)  # type: ignore[arg-type]
