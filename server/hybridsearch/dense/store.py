"""The vector file ``vectors.npy``: written atomically, opened as a read-only memory map.

Live ingestion grows the file in place: rows are appended after the rows its header declares
(the header keeps the row count of the bulk build). How many rows are committed is the
manifest's business, so readers use `open_vector_rows` with that count, and a writer cuts off
rows past it (left by a crash) before appending.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.errors import IndexFormatError
from hybridsearch.storage.files import temp_file_beside

VECTORS_FILE = "vectors.npy"


def write_vectors(path: Path, matrix: NDArray[np.float32]) -> Path:
    """Write a 2-D float32 matrix to ``path`` atomically (temp file, fsync, rename, fsync dir).

    A crash leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    if matrix.ndim != 2 or matrix.dtype != np.float32:
        raise ValueError(f"expected a 2-D float32 matrix, got {matrix.dtype} {matrix.shape}")
    fd, tmp_name = temp_file_beside(path)
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


def _header(path: Path) -> tuple[int, int, int]:
    """(data offset in bytes, header rows, dimension) of a float32 C-order ``.npy`` file."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            offset = handle.tell()
    except FileNotFoundError:
        raise IndexFormatError(f"{path}: vector file not found") from None
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{path}: not a readable .npy vector file: {exc}") from None
    if dtype != np.float32 or fortran or len(shape) != 2:
        raise IndexFormatError(f"{path}: expected a 2-D C-order float32 array")
    return offset, int(shape[0]), int(shape[1])


def open_vector_rows(path: Path, dimension: int, rows: int) -> NDArray[np.float32]:
    """The first ``rows`` rows of ``path`` as a read-only memory map (rows may exceed the header's).

    Rows appended after the header's count by live commits are included; anything past
    ``rows`` (uncommitted) is ignored.
    """
    path = Path(path)
    offset, header_rows, header_dim = _header(path)
    if header_dim != dimension:
        raise IndexFormatError(
            f"{path}: vector dimension {header_dim} differs from the expected {dimension}"
        )
    needed = offset + rows * dimension * 4
    if header_rows > rows or path.stat().st_size < needed:
        raise IndexFormatError(f"{path}: fewer than the {rows} committed rows")
    if rows == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    matrix: NDArray[np.float32] = np.memmap(
        path, dtype=np.float32, mode="r", offset=offset, shape=(rows, dimension)
    )
    return matrix


def write_vector_rows(path: Path, start_row: int, matrix: NDArray[np.float32]) -> None:
    """Write ``matrix`` as rows ``start_row...`` of ``path``, drop anything after, fsync.

    Rows before ``start_row`` are untouched, so memory maps of them stay valid.
    """
    offset, header_rows, dimension = _header(path)
    if matrix.ndim != 2 or matrix.shape[1] != dimension or matrix.dtype != np.float32:
        raise ValueError(f"expected float32 rows of dimension {dimension}, got {matrix.shape}")
    if start_row < header_rows:
        raise ValueError(f"row {start_row} is inside the bulk-built rows ({header_rows})")
    data = np.ascontiguousarray(matrix).tobytes()
    position = offset + start_row * dimension * 4
    fd = os.open(path, os.O_WRONLY)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], position + written)
        os.ftruncate(fd, position + len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
