"""Which dense index serves an index directory: exact (default) or HNSW, per the manifest."""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.base import DenseIndex
from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.errors import IndexFormatError


class DenseIndexKind(enum.Enum):
    """The dense index an index directory is built with (recorded in its manifest)."""

    EXACT = "exact"  # brute-force inner product over the memory-mapped matrix
    HNSW = "hnsw"  # approximate: faiss HNSW graph file beside the matrix (extra ``ann``)


def parse_dense_index(value: str) -> DenseIndexKind:
    """The kind named ``value``; `IndexFormatError` names the known ones."""
    try:
        return DenseIndexKind(value)
    except ValueError:
        known = ", ".join(k.value for k in DenseIndexKind)
        raise IndexFormatError(f"unknown dense index {value!r} (known: {known})") from None


def open_dense_index(
    index_dir: Path,
    kind: DenseIndexKind,
    vectors: NDArray[np.float32],
    *,
    ef_search: int = 128,
    exact_filter_fraction: float | None = None,
) -> DenseIndex:
    """The dense index of ``kind`` over ``vectors`` (HNSW reads its graph from ``index_dir``;
    ``exact_filter_fraction`` None: its default)."""
    if kind is DenseIndexKind.HNSW:
        from hybridsearch.dense.hnsw import (  # noqa: PLC0415
            DEFAULT_EXACT_FILTER_FRACTION,
            HNSW_FILE,
            HnswDenseIndex,
        )

        fraction = DEFAULT_EXACT_FILTER_FRACTION
        if exact_filter_fraction is not None:
            fraction = exact_filter_fraction
        return HnswDenseIndex(
            index_dir / HNSW_FILE, vectors, ef_search=ef_search, exact_filter_fraction=fraction
        )
    return ExactDenseIndex(vectors)
