"""The vector file ``vectors.npy``: written atomically, opened as a read-only memory map."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.errors import IndexFormatError

VECTORS_FILE = "vectors.npy"


def write_vectors(path: Path, matrix: NDArray[np.float32]) -> Path:
    """Write a 2-D float32 matrix to ``path`` atomically (temp file, fsync, rename, fsync dir).

    A crash leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    if matrix.ndim != 2 or matrix.dtype != np.float32:
        raise ValueError(f"expected a 2-D float32 matrix, got {matrix.dtype} {matrix.shape}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            np.save(out, np.ascontiguousarray(matrix), allow_pickle=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def open_vectors(path: Path, dimension: int, rows: int | None = None) -> NDArray[np.float32]:
    """Open ``path`` read-only as a memory map, checking dtype, shape and dimension.

    ``rows``, when given, is the row count the caller expects (e.g. from a manifest). Every
    problem is an `IndexFormatError` naming the file.
    """
    path = Path(path)
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: vector file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise IndexFormatError(f"{path}: not a readable .npy vector file: {exc}") from None
    if not isinstance(matrix, np.ndarray):
        raise IndexFormatError(f"{path}: expected one array, found an archive")
    if matrix.dtype != np.float32:
        raise IndexFormatError(f"{path}: vectors must be float32, found {matrix.dtype}")
    if matrix.ndim != 2:
        raise IndexFormatError(f"{path}: vectors must be 2-D, found shape {matrix.shape}")
    if matrix.shape[1] != dimension:
        raise IndexFormatError(
            f"{path}: vector dimension {matrix.shape[1]} differs from the expected {dimension}"
        )
    if rows is not None and matrix.shape[0] != rows:
        raise IndexFormatError(f"{path}: {matrix.shape[0]} rows, expected {rows}")
    if not matrix.flags.c_contiguous:
        raise IndexFormatError(f"{path}: vectors must be stored in C order")
    return matrix
