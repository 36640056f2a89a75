"""`HnswDenseIndex`: approximate inner-product top-k with a faiss HNSW graph (extra ``ann``).

Why faiss (``faiss-cpu``): a prebuilt manylinux wheel (no compiler needed, unlike hnswlib's
sdist), an HNSW with inner-product metric, filtered search (an id bitmap for deleted rows),
one-file persistence, and the same library the Pyserini peer already needs. usearch would
also fit (smaller wheel); faiss won on filtered search and familiarity.

The graph covers the rows that existed when it was built; rows appended later (upserts) are
searched exactly and merged, so a stale graph costs speed, never results.

Filters (and deleted rows) reach the graph search as a row mask (faiss's ``IDSelectorBitmap``:
the graph is walked through every row, only masked-in rows are returned). When the mask keeps
less than ``exact_filter_fraction`` of the rows, walking the graph finds too few of them within
its candidate list (recall drops; the list is widened by 1/sqrt(fraction), at most 4x) and
costs more than it saves: those searches run exactly over the matching rows instead
(`DEFAULT_EXACT_FILTER_FRACTION`, measured by ``bench/filters.py``), and so do those whose
mask keeps few rows for the candidates asked for (`EXACT_KEPT_PER_CANDIDATE`: a deep list, as
fusion asks for, would otherwise miss matching rows even when there are fewer than k).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.exact import ExactDenseIndex, check_queries
from hybridsearch.errors import IndexFormatError
from hybridsearch.storage.files import fsync_dir, fsync_file, temp_file_beside
from hybridsearch.types import RankedList, ScoredDoc

if TYPE_CHECKING:
    from hybridsearch.storage.manifest import Manifest

HNSW_FILE = "dense.hnsw.faiss"
_ADD_CHUNK = 65_536
#: Below this fraction of rows kept by a mask, search the kept rows exactly (see above).
DEFAULT_EXACT_FILTER_FRACTION = 0.02
#: The most a mask widens the candidate list (efSearch), at low kept fractions.
MAX_EF_WIDENING = 4.0
#: A mask keeping at most this many rows per candidate asked for (max(k, efSearch)) is
#: searched exactly too, whatever its fraction: a walk that may visit efSearch x M rows (M 32)
#: costs more, and, when fewer rows are kept than the k asked for, misses some of them (a
#: filter keeping 56 of 1,400 rows gave 42 to 49 of them at k 100).
EXACT_KEPT_PER_CANDIDATE = 8


def _faiss() -> Any:
    try:
        import faiss  # noqa: PLC0415 (optional: pip install 'hybridsearch[ann]')
    except ImportError as exc:
        raise IndexFormatError(
            "this index uses an HNSW dense index, which needs faiss: "
            "pip install 'hybridsearch[ann]' (faiss-cpu)"
        ) from exc
    return faiss


#: The graph degrees M `index --hnsw-m` accepts. faiss keeps 2 x M neighbour ids (int32) per
#: vector on the base layer: at 512 that is 4 KiB a vector, more than the vector itself up to
#: 1,024 dimensions, and 8 times the top of the range faiss advises (4 to 64; hnswlib: 2 to
#: 100). Higher only spends memory (M 100,000,000 asked faiss for gigabytes a vector:
#: bad_alloc). The bound is the flag's: an index built before it with a larger M keeps its M
#: when it is compacted or split (as it was built, it can be rebuilt).
MIN_M = 2
MAX_M = 512
#: The largest efConstruction `index --hnsw-ef-construction` accepts: the candidate list of
#: each insertion, whose cost grows with it (faiss's default is 40, hnswlib suggests 100 to a
#: few hundred; recall stops improving long before this), so a typo of 200000 is refused
#: rather than a build that never ends.
MAX_EF_CONSTRUCTION = 10_000


@dataclass(frozen=True, slots=True)
class HnswParams:
    """Graph degree and the candidate-list sizes of build and search."""

    m: int = 32
    ef_construction: int = 200
    ef_search: int = 128


def graph_params(path: Path) -> HnswParams:
    """The M and efConstruction the graph file at ``path`` was built with (for an index whose
    manifest predates recording them)."""
    index = _faiss().read_index(str(path))
    hnsw = _faiss().downcast_index(index).hnsw
    # Level 0 keeps 2 * M neighbours per node, each higher level M.
    return HnswParams(m=int(hnsw.nb_neighbors(1)), ef_construction=int(hnsw.efConstruction))


def recorded_params(manifest: Manifest, data_path: Path) -> HnswParams:
    """The HNSW parameters of an index: its manifest's, else its graph file's."""
    if manifest.hnsw_m:
        return HnswParams(m=manifest.hnsw_m, ef_construction=manifest.hnsw_ef_construction)
    return graph_params(data_path / HNSW_FILE)


def build_hnsw(matrix: NDArray[np.float32], path: Path, params: HnswParams | None = None) -> Path:
    """Build the graph over every row of ``matrix`` and write it to ``path`` atomically and
    durably (file and directory fsynced)."""
    faiss = _faiss()
    params = params or HnswParams()
    index = faiss.IndexHNSWFlat(int(matrix.shape[1]), params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    for start in range(0, len(matrix), _ADD_CHUNK):
        index.add(np.ascontiguousarray(matrix[start : start + _ADD_CHUNK], dtype=np.float32))
    fd, tmp = temp_file_beside(path)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        fsync_file(Path(tmp))  # before a manifest names it: a power cut keeps it whole
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


@functools.lru_cache(maxsize=4)
def _read_graph(path: str, mtime_ns: int, size: int) -> Any:
    """The graph file, read once per version: each published snapshot (every upsert batch)
    opens its dense index again, and concurrent searches of one faiss index are safe."""
    del mtime_ns, size  # part of the cache key only
    return _faiss().read_index(path)


def graph_rows(path: Path) -> int:
    """How many rows the graph file at ``path`` covers (the file read once per version, as
    the searcher reads it: a served index's graph is already in memory)."""
    stat = path.stat()
    try:
        return int(_read_graph(str(path), stat.st_mtime_ns, stat.st_size).ntotal)
    except RuntimeError as exc:
        raise IndexFormatError(f"{path}: unreadable HNSW file ({exc})") from None


class HnswDenseIndex:
    """Approximate top-k by inner product over a graph file, exact over rows added after it."""

    def __init__(
        self,
        path: Path,
        matrix: NDArray[np.float32],
        *,
        ef_search: int = 128,
        exact_filter_fraction: float = DEFAULT_EXACT_FILTER_FRACTION,
    ) -> None:
        faiss = _faiss()
        if not path.is_file():
            raise IndexFormatError(f"{path}: HNSW file not found (rebuild the index)")
        stat = path.stat()
        try:
            self._index = _read_graph(str(path), stat.st_mtime_ns, stat.st_size)
        except RuntimeError as exc:
            raise IndexFormatError(f"{path}: unreadable HNSW file ({exc})") from None
        if self._index.d != matrix.shape[1] or self._index.ntotal > matrix.shape[0]:
            raise IndexFormatError(
                f"{path}: graph of {self._index.ntotal} x {self._index.d} does not fit the "
                f"vectors ({matrix.shape[0]} x {matrix.shape[1]})"
            )
        self._faiss = faiss
        self._matrix = matrix
        self._ef_search = ef_search
        self._exact_filter_fraction = exact_filter_fraction
        self._graph_rows = int(self._index.ntotal)
        self._tail = (
            ExactDenseIndex(matrix[self._graph_rows :]) if self.size > self._graph_rows else None
        )

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
        """For each query row, about the ``k`` best live rows, descending score, ties by ordinal."""
        queries = check_queries(queries, self.dimension)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if live is not None and live.shape != (self.size,):
            raise ValueError(f"live must have shape ({self.size},), got {live.shape}")
        if k == 0 or len(queries) == 0:
            return [RankedList([], []) for _ in range(len(queries))]
        widen = 1.0
        if live is not None:
            kept = np.flatnonzero(live)
            fraction = len(kept) / max(1, self.size)
            few = len(kept) <= EXACT_KEPT_PER_CANDIDATE * max(k, self._ef_search)
            if few or fraction < self._exact_filter_fraction:
                return _exact_over(self._matrix, kept, queries, k)
            # A walk through a graph of mostly masked-out rows meets fewer kept ones per
            # candidate: widen the candidate list (measured: recall@10 stays >= 0.95).
            widen = min(MAX_EF_WIDENING, 1.0 / math.sqrt(max(fraction, 1e-9)))
        graph_k = min(k, self._graph_rows)
        params = self._faiss.SearchParametersHNSW()
        # (A deep candidate list, e.g. 1000 for fusion, is wide enough already.)
        params.efSearch = max(int(self._ef_search * widen), graph_k)
        if live is not None:
            bits = np.packbits(live[: self._graph_rows], bitorder="little")
            params.sel = self._faiss.IDSelectorBitmap(self._graph_rows, self._faiss.swig_ptr(bits))
        found: list[tuple[NDArray[np.int64], NDArray[np.float32]]] = []
        if graph_k > 0:
            scores, ordinals = self._index.search(queries, graph_k, params=params)
            for row_o, row_s in zip(ordinals, scores, strict=True):
                kept = row_o >= 0  # faiss pads with -1 when fewer rows qualify
                found.append((row_o[kept], row_s[kept]))
        else:
            empty = (np.empty(0, np.int64), np.empty(0, np.float32))
            found = [empty] * len(queries)
        if self._tail is not None:
            tail_live = None if live is None else live[self._graph_rows :]
            merged = []
            for (o, s), tail in zip(found, self._tail.ranked(queries, k, tail_live), strict=True):
                merged.append(
                    (
                        np.concatenate([o, tail.ordinals + self._graph_rows]),
                        np.concatenate([s, tail.scores.astype(np.float32)]),
                    )
                )
            found = merged
        return [_best(o, s, k) for o, s in found]


def _exact_over(
    matrix: NDArray[np.float32], rows: NDArray[np.intp], queries: NDArray[np.float32], k: int
) -> list[Sequence[ScoredDoc]]:
    """Exact top-k among ``rows`` (ascending) of ``matrix``, as ordinals."""
    subset = ExactDenseIndex(np.ascontiguousarray(matrix[rows], dtype=np.float32))
    return [RankedList(rows[found.ordinals], found.scores) for found in subset.ranked(queries, k)]


def _best(ordinals: NDArray[np.int64], scores: NDArray[np.float32], k: int) -> RankedList:
    """The ``k`` best by descending score, ties by ascending ordinal."""
    order = np.lexsort((ordinals, -scores))[:k]
    return RankedList(ordinals[order], scores[order])
