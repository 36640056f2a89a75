"""A deliberately simple brute-force dense scorer: the yardstick for congruence tests.

Per-row float64 dot products and a full sort; slow on purpose, obviously right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hybridsearch.types import ScoredDoc


class ReferenceDenseIndex:
    """Brute-force `DenseIndex`: for each query, score every live row and sort them all."""

    def __init__(self, matrix: NDArray[np.float32]) -> None:
        self._matrix = np.asarray(matrix, dtype=np.float64)

    @property
    def dimension(self) -> int:
        """Vector dimension."""
        return int(self._matrix.shape[1])

    def search(
        self,
        queries: NDArray[np.float32],
        k: int,
        live: NDArray[np.bool_] | None = None,
    ) -> list[Sequence[ScoredDoc]]:
        """For each query, the ``k`` best live rows: descending score, ties by ordinal."""
        results: list[Sequence[ScoredDoc]] = []
        for query in np.asarray(queries, dtype=np.float64):
            scored = []
            for ordinal, row in enumerate(self._matrix):
                if live is not None and not live[ordinal]:
                    continue
                scored.append((float(np.dot(query, row)), ordinal))
            scored.sort(key=lambda pair: (-pair[0], pair[1]))
            results.append([ScoredDoc(ordinal, score) for score, ordinal in scored[:k]])
        return results
