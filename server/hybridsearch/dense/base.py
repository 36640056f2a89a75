"""The dense-index seam: query vectors → top-k ordinals by inner product."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from hybridsearch.types import ScoredDoc


class DenseIndex(Protocol):
    """Top-k search over a matrix whose row i is the vector of internal ordinal i."""

    @property
    def dimension(self) -> int:
        """Vector dimension."""
        ...

    def search(
        self,
        queries: NDArray[np.float32],
        k: int,
        live: NDArray[np.bool_] | None = None,
    ) -> list[Sequence[ScoredDoc]]:
        """For each row of ``queries`` (shape ``(n, dimension)``), the ``k`` best live rows.

        ``live[i]`` False excludes ordinal ``i`` (deleted or replaced documents). Results are
        sorted by descending score, ties by ascending ordinal.
        """
        ...
