"""Congruence of ExactDenseIndex with the brute-force reference, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.dense.reference import ReferenceDenseIndex
from hybridsearch.types import ScoredDoc


def _pairs(result: list[list[ScoredDoc]]) -> list[list[tuple[int, float]]]:
    return [[(d.ordinal, d.score) for d in docs] for docs in result]


@pytest.mark.parametrize(
    ("rows", "dim", "queries", "k"),
    [(1, 3, 1, 1), (7, 4, 3, 3), (50, 16, 5, 10), (200, 32, 8, 200), (300, 8, 2, 500)],
)
@pytest.mark.parametrize("live_fraction", [None, 1.0, 0.5, 0.05, 0.0])
def test_integer_data_matches_reference_exactly(
    rows: int, dim: int, queries: int, k: int, live_fraction: float | None
) -> None:
    # Small integers: float32 products are exact, so scores and ties must match bit for bit,
    # and the few distinct values produce many ties at the k-th place.
    rng = np.random.default_rng(rows * 1000 + dim)
    matrix = rng.integers(-2, 3, size=(rows, dim)).astype(np.float32)
    q = rng.integers(-2, 3, size=(queries, dim)).astype(np.float32)
    live = None if live_fraction is None else rng.random(rows) < live_fraction
    expected = ReferenceDenseIndex(matrix).search(q, k, live)
    actual = ExactDenseIndex(matrix).search(q, k, live)
    assert _pairs(actual) == _pairs(expected)


@pytest.mark.parametrize(("rows", "dim", "k"), [(1000, 384, 10), (257, 64, 100), (64, 8, 64)])
def test_gaussian_data_matches_reference(rows: int, dim: int, k: int) -> None:
    rng = np.random.default_rng(dim)
    matrix = rng.standard_normal((rows, dim)).astype(np.float32)
    q = rng.standard_normal((4, dim)).astype(np.float32)
    live = rng.random(rows) < 0.8
    expected = ReferenceDenseIndex(matrix).search(q, k, live)
    actual = ExactDenseIndex(matrix).search(q, k, live)
    for exp, act in zip(expected, actual, strict=True):
        assert [d.ordinal for d in act] == [d.ordinal for d in exp]
        np.testing.assert_allclose(
            [d.score for d in act], [d.score for d in exp], rtol=1e-5, atol=1e-4
        )


def test_all_tied_rows_come_in_ordinal_order() -> None:
    matrix = np.ones((10, 4), dtype=np.float32)
    result = ExactDenseIndex(matrix).search(np.ones((1, 4), dtype=np.float32), 4)
    assert [d.ordinal for d in result[0]] == [0, 1, 2, 3]
    assert all(d.score == 4.0 for d in result[0])


def test_dead_rows_never_returned_even_when_best() -> None:
    matrix = np.array([[10.0], [1.0], [2.0], [3.0]], dtype=np.float32)
    live = np.array([False, True, False, True])
    result = ExactDenseIndex(matrix).search(np.ones((1, 1), dtype=np.float32), 10, live)
    assert result == [[ScoredDoc(3, 3.0), ScoredDoc(1, 1.0)]]


def test_empty_matrix_and_k_zero_give_empty_lists() -> None:
    empty = ExactDenseIndex(np.zeros((0, 3), dtype=np.float32))
    assert empty.search(np.ones((2, 3), dtype=np.float32), 5) == [[], []]
    index = ExactDenseIndex(np.ones((3, 3), dtype=np.float32))
    assert index.search(np.ones((1, 3), dtype=np.float32), 0) == [[]]
    none_live = np.zeros(3, dtype=bool)
    assert index.search(np.ones((1, 3), dtype=np.float32), 2, none_live) == [[]]


def test_memmap_matrix_is_searched_without_modification(tmp_path) -> None:
    path = tmp_path / "v.npy"
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(path, data)
    matrix = np.load(path, mmap_mode="r")
    result = ExactDenseIndex(matrix).search(
        np.ones((1, 3), dtype=np.float32), 2, np.array([True, True, True, False])
    )
    assert [d.ordinal for d in result[0]] == [2, 1]
    np.testing.assert_array_equal(np.load(path), data)


@pytest.mark.parametrize(
    ("queries", "k", "live", "message"),
    [
        (np.ones((1, 4), dtype=np.float32), 1, None, "shape"),
        (np.ones(3, dtype=np.float32), 1, None, "shape"),
        (np.array([[np.nan, 0, 0]], dtype=np.float32), 1, None, "finite"),
        (np.ones((1, 3), dtype=np.float32), -1, None, "k must be"),
        (np.ones((1, 3), dtype=np.float32), 1, np.ones(2, dtype=bool), "live"),
    ],
)
def test_bad_arguments_raise(queries, k, live, message) -> None:
    index = ExactDenseIndex(np.ones((3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=message):
        index.search(queries, k, live)


def test_matrix_must_be_2d_float32() -> None:
    with pytest.raises(ValueError, match="float32"):
        ExactDenseIndex(np.ones((2, 2), dtype=np.float64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2-D"):
        ExactDenseIndex(np.ones(3, dtype=np.float32))


@pytest.mark.parametrize("rows", [30, 82, 1400])
def test_a_query_s_answer_does_not_depend_on_its_batch(rows: int) -> None:
    """BLAS picks its kernel by the product's shape (one query, a batch of 9, a small matrix),
    and the same row then scores a few ulps differently: identical documents got unequal
    scores, broken by that noise instead of by ordinal, and a page of a query searched in a
    batch overlapped the page searched alone."""
    rng = np.random.default_rng(rows)
    matrix = rng.standard_normal((rows, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix[3:28] = matrix[2]  # 26 identical documents
    queries = rng.standard_normal((40, 384)).astype(np.float32)
    queries[0] = matrix[2] + 0.3 * queries[0]  # near the identical ones: they rank first
    index = ExactDenseIndex(matrix)
    alone = [_pairs(index.search(queries[i : i + 1], 30))[0] for i in range(len(queries))]
    first = alone[0]
    assert [ordinal for ordinal, _ in first[:26]] == list(range(2, 28))
    assert len({score for _, score in first[:26]}) == 1
    for size in (2, 3, 8, 9, 16, 40):
        batched = _pairs(index.search(queries[:size], 30))
        assert batched == alone[:size], f"a batch of {size}"
    for i in (5, 17, 31):  # the same query at other places of a batch
        batch = np.concatenate([queries[i + 1 : i + 4], queries[i : i + 1]])
        assert _pairs(index.search(batch, 30))[-1] == alone[i]


def test_an_index_over_appended_rows_reads_only_the_new_rows_for_its_norms() -> None:
    """A commit appends rows: the snapshot's new index carries the earlier one's largest row
    norm and reads only the rows after it (a full pass over a million rows takes 0.3 s)."""
    rng = np.random.default_rng(9)
    matrix = rng.standard_normal((50, 16)).astype(np.float32)
    query = rng.standard_normal((1, 16)).astype(np.float32)
    earlier = ExactDenseIndex(matrix[:40])
    earlier.search(query, 5)
    later = ExactDenseIndex(matrix)
    later.carry_norms(earlier)
    assert later._norms[0] == 40  # nothing of the first 40 rows read again
    assert _pairs(later.search(query, 5)) == _pairs(ExactDenseIndex(matrix).search(query, 5))
    assert later._norms == (50, pytest.approx(float(np.linalg.norm(matrix, axis=1).max())))


def test_a_damaged_vector_is_left_out_and_the_rest_still_answer() -> None:
    """One NaN row (a broken model or vectors file) made every search return nothing."""
    rng = np.random.default_rng(11)
    matrix = rng.standard_normal((20, 8)).astype(np.float32)
    matrix[4] = np.nan
    matrix[9, 2] = np.inf
    query = rng.standard_normal((2, 8)).astype(np.float32)
    found = ExactDenseIndex(matrix).search(query, 5)
    good = np.delete(np.arange(20), [4, 9])
    expected = ExactDenseIndex(matrix[good]).search(query, 5)
    for f, e in zip(found, expected, strict=True):
        assert [d.ordinal for d in f] == [int(good[d.ordinal]) for d in e]
    assert len(ExactDenseIndex(matrix).search(query, 20)[0]) == 18
