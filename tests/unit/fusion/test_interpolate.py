from __future__ import annotations

import math

import pytest

from hybridsearch.fusion import fuse_interpolate
from hybridsearch.types import ArmScore, Normalization, ScoredDoc

Z = math.sqrt(1.5)
SPARSE = [ScoredDoc(1, 10.0), ScoredDoc(2, 6.0), ScoredDoc(3, 2.0)]
DENSE = [ScoredDoc(2, 0.9), ScoredDoc(4, 0.7), ScoredDoc(1, 0.5)]


def doc_id(ordinal: int) -> str:
    return f"doc{ordinal}"


def fuse(alpha: float, norm: Normalization = Normalization.MIN_MAX) -> list[tuple[int, float]]:
    fused = fuse_interpolate(SPARSE, DENSE, alpha=alpha, normalization=norm, doc_id=doc_id)
    return [(d.ordinal, d.score) for d in fused]


def assert_fused(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [o for o, _ in got] == [o for o, _ in want]
    for (_, g), (_, w) in zip(got, want, strict=True):
        assert g == pytest.approx(w)


def test_min_max_alpha_half() -> None:
    # sparse norm: 1→1, 2→.5, 3→0; dense norm: 2→1, 4→.5, 1→0; missing → 0.
    assert_fused(fuse(0.5), [(2, 0.75), (1, 0.5), (4, 0.25), (3, 0.0)])


def test_min_max_alpha_point_three() -> None:
    assert_fused(fuse(0.3), [(1, 0.7), (2, 0.65), (4, 0.15), (3, 0.0)])


def test_z_score_floor_is_list_minimum() -> None:
    # both lists z = (Z, 0, -Z); missing gets -Z.
    got = fuse(0.5, Normalization.Z_SCORE)
    assert_fused(got, [(2, Z / 2), (1, 0.0), (4, -Z / 2), (3, -Z)])


def test_none_uses_raw_scores_and_raw_minimum() -> None:
    got = fuse(0.5, Normalization.NONE)
    assert_fused(got, [(1, 5.25), (2, 3.45), (4, 1.35), (3, 1.25)])


def test_arm_scores_carry_raw_rank_and_normalised() -> None:
    fused = fuse_interpolate(
        SPARSE, DENSE, alpha=0.5, normalization=Normalization.MIN_MAX, doc_id=doc_id
    )
    by_ordinal = {d.ordinal: d for d in fused}
    assert by_ordinal[1].sparse == ArmScore(10.0, 1, 1.0)
    assert by_ordinal[1].dense == ArmScore(0.5, 3, 0.0)
    assert by_ordinal[3].dense is None
    assert by_ordinal[4].sparse is None
    dense4 = by_ordinal[4].dense
    assert dense4 is not None
    assert (dense4.raw_score, dense4.rank) == (0.7, 2)
    assert dense4.normalized_score == pytest.approx(0.5)


def test_rank_is_position_in_given_list_even_if_unsorted() -> None:
    sparse = [ScoredDoc(1, 1.0), ScoredDoc(2, 3.0)]
    fused = fuse_interpolate(
        sparse, [], alpha=0.0, normalization=Normalization.MIN_MAX, doc_id=doc_id
    )
    assert [d.ordinal for d in fused] == [2, 1]
    assert fused[0].sparse == ArmScore(3.0, 2, 1.0)


@pytest.mark.parametrize("norm", list(Normalization))
def test_both_empty(norm: Normalization) -> None:
    assert fuse_interpolate([], [], alpha=0.5, normalization=norm, doc_id=doc_id) == []


def test_one_side_empty() -> None:
    fused = fuse_interpolate(
        SPARSE, [], alpha=0.5, normalization=Normalization.MIN_MAX, doc_id=doc_id
    )
    assert [(d.ordinal, d.score) for d in fused] == [(1, 0.5), (2, 0.25), (3, 0.0)]
    assert all(d.dense is None for d in fused)
    fused = fuse_interpolate(
        [], DENSE, alpha=0.25, normalization=Normalization.Z_SCORE, doc_id=doc_id
    )
    assert [d.ordinal for d in fused] == [2, 4, 1]
    assert [d.score for d in fused] == pytest.approx([0.25 * Z, 0.0, -0.25 * Z])


def test_one_sided_lists_disjoint() -> None:
    sparse = [ScoredDoc(1, 5.0), ScoredDoc(2, 1.0)]
    dense = [ScoredDoc(3, 0.8), ScoredDoc(4, 0.2)]
    fused = fuse_interpolate(
        sparse, dense, alpha=0.6, normalization=Normalization.MIN_MAX, doc_id=doc_id
    )
    # 3: .6, 1: .4, then 2 and 4 both 0 → by id.
    assert [(d.ordinal, d.score) for d in fused] == [
        (3, pytest.approx(0.6)),
        (1, pytest.approx(0.4)),
        (2, 0.0),
        (4, 0.0),
    ]


@pytest.mark.parametrize("norm", list(Normalization))
def test_all_equal_scores_no_nan(norm: Normalization) -> None:
    sparse = [ScoredDoc(1, 2.0), ScoredDoc(2, 2.0)]
    dense = [ScoredDoc(2, 0.3), ScoredDoc(3, 0.3)]
    fused = fuse_interpolate(sparse, dense, alpha=0.5, normalization=norm, doc_id=doc_id)
    assert len(fused) == 3
    assert all(math.isfinite(d.score) for d in fused)
    if norm is Normalization.MIN_MAX:
        # every retrieved document normalises to 1.0, a missing one to 0.0
        assert [(d.ordinal, d.score) for d in fused] == [(2, 1.0), (1, 0.5), (3, 0.5)]
    else:
        # the floor is the list minimum, which every entry equals: a three-way tie, by id
        assert [d.ordinal for d in fused] == [1, 2, 3]
        assert len({d.score for d in fused}) == 1


def test_ties_broken_by_external_id_not_ordinal() -> None:
    names = {5: "a", 3: "b", 9: "c"}
    sparse = [ScoredDoc(9, 1.0), ScoredDoc(3, 1.0), ScoredDoc(5, 1.0)]
    fused = fuse_interpolate(
        sparse, [], alpha=0.5, normalization=Normalization.MIN_MAX, doc_id=names.__getitem__
    )
    assert [d.ordinal for d in fused] == [5, 3, 9]


@pytest.mark.parametrize("norm", list(Normalization))
def test_alpha_extremes_reproduce_single_arm_orders(norm: Normalization) -> None:
    only_sparse = fuse_interpolate(SPARSE, DENSE, alpha=0.0, normalization=norm, doc_id=doc_id)
    assert [d.ordinal for d in only_sparse if d.sparse][:3] == [1, 2, 3]
    assert [d.ordinal for d in only_sparse][:2] == [1, 2]
    only_dense = fuse_interpolate(SPARSE, DENSE, alpha=1.0, normalization=norm, doc_id=doc_id)
    assert [d.ordinal for d in only_dense if d.dense] == [2, 4, 1]
    assert [d.ordinal for d in only_dense][:2] == [2, 4]


@pytest.mark.parametrize("alpha", [math.nan, math.inf, -math.inf, -0.01, 1.01])
def test_bad_alpha_is_a_programming_error(alpha: float) -> None:
    # Requests are validated before fusion (engine.request); here it is a caller's bug.
    with pytest.raises(ValueError, match=r"^alpha must be a finite number in \[0, 1\]"):
        fuse_interpolate(
            SPARSE, DENSE, alpha=alpha, normalization=Normalization.MIN_MAX, doc_id=doc_id
        )


def test_bad_lists_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="repeats"):
        fuse_interpolate(
            [ScoredDoc(1, 1.0), ScoredDoc(1, 0.5)],
            [],
            alpha=0.5,
            normalization=Normalization.MIN_MAX,
            doc_id=doc_id,
        )
    with pytest.raises(ValueError, match="non-finite"):
        fuse_interpolate(
            [],
            [ScoredDoc(1, math.nan)],
            alpha=0.5,
            normalization=Normalization.MIN_MAX,
            doc_id=doc_id,
        )
