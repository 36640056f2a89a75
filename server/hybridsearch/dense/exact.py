"""`ExactDenseIndex`: exhaustive inner-product top-k over a float32 matrix (BLAS)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hybridsearch.types import RankedList, ScoredDoc

#: Rows per chunk when row norms are computed or rows re-scored (bounds the memory taken).
NORM_CHUNK = 65_536
#: A safety factor on the dot product's error bound (the query norm's own rounding, FMA).
MARGIN_SLACK = 1.25


class ExactDenseIndex:
    """Exact top-k by inner product; row ``i`` of ``matrix`` is the vector of ordinal ``i``.

    ``matrix`` may be a read-only ``np.memmap`` (see `hybridsearch.dense.store`); it is never
    copied. A batch of queries costs one ``queries @ matrix.T`` product, which picks each
    query's rows; their scores are then computed one query at a time (`_rescored`), so a
    query's answer never depends on the batch it was searched in.
    """

    def __init__(self, matrix: NDArray[np.float32]) -> None:
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2-D (rows, dimension), got shape {matrix.shape}")
        if matrix.dtype != np.float32:
            raise ValueError(f"matrix must be float32, got {matrix.dtype}")
        self._matrix = matrix
        # The same rows as a plain array: np.take on it gathers 1,000 rows in about half the
        # time np.memmap's __getitem__ takes.
        self._rows: NDArray[np.float32] = matrix.view(np.ndarray)
        # (rows covered, their largest norm): `_margin` extends it to every row, once.
        self._norms: tuple[int, float] = (0, 0.0)

    @property
    def dimension(self) -> int:
        """Vector dimension."""
        return int(self._matrix.shape[1])

    @property
    def size(self) -> int:
        """Rows (ordinals), live or not."""
        return int(self._matrix.shape[0])

    def search(
        self,
        queries: NDArray[np.float32],
        k: int,
        live: NDArray[np.bool_] | None = None,
    ) -> list[Sequence[ScoredDoc]]:
        """For each query row, the ``k`` best live rows by descending score, ties by ordinal.

        Fewer than ``k`` live rows: all of them. ``k == 0`` or an empty matrix: empty lists.
        """
        return [*self.ranked(queries, k, live)]

    def ranked(
        self,
        queries: NDArray[np.float32],
        k: int,
        live: NDArray[np.bool_] | None = None,
    ) -> list[RankedList]:
        """`search`, typed as the arrays it returns (for callers that read them)."""
        queries = check_queries(queries, self.dimension)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        rows = self.size
        if live is not None and live.shape != (rows,):
            raise ValueError(f"live must have shape ({rows},), got {live.shape}")
        live_rows = rows if live is None else int(np.count_nonzero(live))
        k = min(k, live_rows)
        if k == 0 or len(queries) == 0:
            return [RankedList([], []) for _ in range(len(queries))]
        scores = queries @ self._matrix.T  # (n, rows) float32: which rows, not their scores
        if not np.isfinite(scores).all():  # a damaged vector (NaN, inf) is never returned
            scores[~np.isfinite(scores)] = -np.inf
        if live is not None and live_rows < rows:
            scores[:, ~live] = -np.inf
        # The k largest land in the last k columns (unordered); ordering and ties come after.
        top = np.argpartition(scores, rows - k, axis=1)[:, rows - k :]
        margins = self._margin() * np.linalg.norm(queries, axis=1)
        return [
            self._rescored(scores[i], top[i], queries[i], k, float(margins[i]))
            for i in range(len(queries))
        ]

    def carry_norms(self, earlier: ExactDenseIndex) -> None:
        """Start from what ``earlier`` knows of the row norms: ``earlier`` must search a prefix
        of this matrix (the same vectors file before rows were appended), so only the new
        rows are read when `_margin` first runs (a pass over a million rows takes 0.3 s)."""
        covered, largest = earlier._norms
        if covered <= self.size:
            self._norms = (covered, largest)

    def _margin(self) -> float:
        """How far a row's score in the batched product may be from its score alone, per
        unit of query norm: twice the float32 error bound of a dot product of this dimension
        (`γ_d` = d·u / (1 − d·u), u = 2^-24) times the largest row norm (computed once)."""
        covered, largest = self._norms
        if covered < self.size:
            for start in range(covered, self.size, NORM_CHUNK):
                chunk = self._matrix[start : start + NORM_CHUNK]
                squares = np.einsum("ij,ij->i", chunk, chunk)
                squares = squares[np.isfinite(squares)]  # damaged rows are never returned
                largest = max(largest, float(np.sqrt(squares.max(initial=0.0))))
            self._norms = (self.size, largest)
        unit = self.dimension * 2.0**-24
        return 2.0 * MARGIN_SLACK * unit / (1.0 - unit) * largest

    def _rescored(
        self,
        row: NDArray[np.float32],
        top: NDArray[np.intp],
        query: NDArray[np.float32],
        k: int,
        margin: float,
    ) -> RankedList:
        """The k best rows by their scores computed for this query alone.

        BLAS computes a matrix product with kernels that depend on its shape (a query alone,
        in a batch of 9, a small matrix), so the same row scores up to a few ulps differently
        with the batch it came in: identical documents got different scores, and ties were
        broken by that noise instead of by id. So the batched product only picks the rows:
        every row within ``2 * margin`` of the k-th (the rows that could be in the top k
        whatever the batch), each re-scored on its own by a dot product (`np.vecdot`: one per
        row, independent of the other rows and queries), best first, ties by ordinal.

        Cost: +0.36 ms per query of 1,000 candidates over SciFact (0.99 against 0.63; one
        thread, this machine). Re-scoring only the rows whose order the noise could change
        needs a bound on it; the rigorous one (above) marks most of 1,000 candidates, so it
        costs as much.
        """
        kth = row[top].min()
        if np.isfinite(kth):
            rows = np.flatnonzero(row >= kth - 2.0 * margin)  # ``top`` and every near tie
        else:  # fewer rows with a score than k: dead rows and damaged vectors left out
            rows = np.flatnonzero(np.isfinite(row))
        # In chunks: a large cluster of duplicates (or a zero query) ties many rows at the k-th.
        scores = np.empty(len(rows), dtype=np.float32)
        for start in range(0, len(rows), NORM_CHUNK):
            part = rows[start : start + NORM_CHUNK]
            gathered = np.take(self._rows, part, axis=0)
            scores[start : start + len(part)] = np.vecdot(gathered, query)
        order = np.lexsort((rows, -scores))[:k]
        return RankedList(rows[order], scores[order])


def check_queries(queries: NDArray[np.float32], dimension: int) -> NDArray[np.float32]:
    """``queries`` as float32, checked to be finite and of shape ``(n, dimension)``."""
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dimension:
        raise ValueError(f"queries must have shape (n, {dimension}), got {queries.shape}")
    if not np.isfinite(queries).all():
        raise ValueError("queries must be finite")
    return queries
