"""HNSW filtered search (a row mask through faiss's ID selector, an exact search over the
matching rows when the mask is very selective): recall@10 against exact filtered search, on
uniform random vectors (harder for a graph than clustered text embeddings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybridsearch.dense.exact import ExactDenseIndex

pytest.importorskip("faiss", reason="the `ann` extra (faiss-cpu) is not installed")

from hybridsearch.dense.hnsw import (
    DEFAULT_EXACT_FILTER_FRACTION,
    HNSW_FILE,
    HnswDenseIndex,
    HnswParams,
    build_hnsw,
)

ROWS, DIM, K = 4000, 32, 10


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path]:
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    path = tmp_path_factory.mktemp("hnsw") / HNSW_FILE
    build_hnsw(matrix, path, HnswParams(m=16, ef_construction=100))
    return matrix, path


@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 0.5])
def test_filtered_recall_against_exact_filtered_search(
    vectors: tuple[np.ndarray, Path], selectivity: float
) -> None:
    matrix, path = vectors
    rng = np.random.default_rng(int(selectivity * 1000))
    mask = np.zeros(ROWS, dtype=np.bool_)
    mask[rng.choice(ROWS, max(1, int(selectivity * ROWS)), replace=False)] = True
    queries = rng.standard_normal((50, DIM)).astype(np.float32)
    hnsw = HnswDenseIndex(path, matrix)  # the default efSearch (128)
    exact = ExactDenseIndex(matrix)
    found = hnsw.search(queries, K, mask)
    expected = exact.search(queries, K, mask)
    recall = np.mean(
        [
            len({d.ordinal for d in f} & {d.ordinal for d in e}) / len(e)
            for f, e in zip(found, expected, strict=True)
        ]
    )
    assert recall >= 0.95, recall
    assert all(mask[d.ordinal] for hits in found for d in hits)  # never a filtered-out row
    assert all(len(f) == min(K, int(mask.sum())) for f in found)


def test_below_the_fraction_the_search_is_exact_over_the_matching_rows(
    vectors: tuple[np.ndarray, Path],
) -> None:
    matrix, path = vectors
    mask = np.zeros(ROWS, dtype=np.bool_)
    mask[::100] = True  # 1 %: below the default fraction
    assert mask.mean() < DEFAULT_EXACT_FILTER_FRACTION
    queries = np.random.default_rng(3).standard_normal((5, DIM)).astype(np.float32)
    found = HnswDenseIndex(path, matrix).search(queries, K, mask)
    expected = ExactDenseIndex(matrix).search(queries, K, mask)
    for f, e in zip(found, expected, strict=True):  # the same rows, the same scores
        assert [d.ordinal for d in f] == [d.ordinal for d in e]
        assert [d.score for d in f] == pytest.approx([d.score for d in e], rel=1e-5)
    # With the fallback off, the graph search still returns only masked-in rows.
    half = np.zeros(ROWS, dtype=np.bool_)
    half[::2] = True  # more rows than 8 per candidate: the graph is walked
    graph = HnswDenseIndex(path, matrix, exact_filter_fraction=0.0).search(queries, K, half)
    assert all(half[d.ordinal] for hits in graph for d in hits)


def test_a_deep_search_returns_every_matching_row_when_fewer_match_than_asked(
    vectors: tuple[np.ndarray, Path],
) -> None:
    """A filter keeping 4 % of the rows (above the fraction) and a deep k, as fusion asks
    for: the graph walk returned only some of the 160 matching rows."""
    matrix, path = vectors
    mask = np.zeros(ROWS, dtype=np.bool_)
    mask[::25] = True
    assert mask.mean() > DEFAULT_EXACT_FILTER_FRACTION
    queries = np.random.default_rng(5).standard_normal((5, DIM)).astype(np.float32)
    found = HnswDenseIndex(path, matrix).search(queries, 1000, mask)
    expected = ExactDenseIndex(matrix).search(queries, 1000, mask)
    for f, e in zip(found, expected, strict=True):
        assert len(f) == int(mask.sum())
        assert [d.ordinal for d in f] == [d.ordinal for d in e]
