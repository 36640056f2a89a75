"""`ExactDenseIndex`: exhaustive inner-product top-k over a float32 matrix (BLAS)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hybridsearch.types import RankedList, ScoredDoc


class ExactDenseIndex:
    """Exact top-k by inner product; row ``i`` of ``matrix`` is the vector of ordinal ``i``.

    ``matrix`` may be a read-only ``np.memmap`` (see `hybridsearch.dense.store`); it is never
    copied. A batch of queries costs one ``queries @ matrix.T`` product.
    """

    def __init__(self, matrix: NDArray[np.float32]) -> None:
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2-D (rows, dimension), got shape {matrix.shape}")
        if matrix.dtype != np.float32:
            raise ValueError(f"matrix must be float32, got {matrix.dtype}")
        self._matrix = matrix

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
        scores = queries @ self._matrix.T  # (n, rows) float32
        if live is not None and live_rows < rows:
            scores[:, ~live] = -np.inf
        # The k largest land in the last k columns (unordered); ordering and ties come after.
        top = np.argpartition(scores, rows - k, axis=1)[:, rows - k :]
        return [_ranked(scores[i], top[i], k) for i in range(len(queries))]


def _ranked(row: NDArray[np.float32], candidates: NDArray[np.intp], k: int) -> RankedList:
    """Sort candidates by (-score, ordinal), fixing argpartition's arbitrary pick among ties."""
    kth = row[candidates].min()
    # Rows scoring exactly the k-th score may outnumber the free slots; argpartition picks any
    # of them, the contract wants the lowest ordinals.
    if np.count_nonzero(row == kth) > np.count_nonzero(row[candidates] == kth):
        above = np.flatnonzero(row > kth)
        tied = np.flatnonzero(row == kth)[: k - len(above)]
        candidates = np.concatenate([above, tied])
    chosen = row[candidates]
    order = np.lexsort((candidates, -chosen))
    return RankedList(candidates[order], chosen[order])


def check_queries(queries: NDArray[np.float32], dimension: int) -> NDArray[np.float32]:
    """``queries`` as float32, checked to be finite and of shape ``(n, dimension)``."""
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dimension:
        raise ValueError(f"queries must have shape (n, {dimension}), got {queries.shape}")
    if not np.isfinite(queries).all():
        raise ValueError("queries must be finite")
    return queries
