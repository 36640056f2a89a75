"""Opening an index directory: manifest, tantivy index, memory-mapped vectors, id map."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.store import open_vectors
from hybridsearch.errors import IndexFormatError
from hybridsearch.sparse.tantivy_index import SparseReader
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.manifest import (
    IDS_FILE,
    SPARSE_DIR,
    VECTORS_FILE,
    Manifest,
    load_manifest,
)


@dataclass(slots=True)
class OpenIndex:
    """A loaded index: both arms row-aligned by internal ordinal."""

    path: Path
    manifest: Manifest
    sparse: SparseReader
    vectors: NDArray[np.float32] | None
    ids: list[str]

    @property
    def size_bytes(self) -> int:
        """Bytes on disk."""
        return dir_size_bytes(self.path)


def load_ids(path: Path, rows: int) -> list[str]:
    """The ordinal → external id map."""
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{path}: unreadable id map ({exc})") from exc
    if not isinstance(ids, list) or len(ids) != rows:
        raise IndexFormatError(f"{path}: id map does not have {rows} entries")
    return [str(i) for i in ids]


def open_index(path: Path) -> OpenIndex:
    """Open an index directory written by `hybridsearch index`."""
    manifest = load_manifest(path)
    sparse = SparseReader(path / SPARSE_DIR)
    vectors = None
    if manifest.encoder is not None:
        vectors = open_vectors(
            path / VECTORS_FILE, manifest.encoder.dimension, rows=manifest.ordinal_count
        )
    ids = load_ids(path / IDS_FILE, manifest.ordinal_count)
    return OpenIndex(path=path, manifest=manifest, sparse=sparse, vectors=vectors, ids=ids)
