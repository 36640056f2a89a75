"""vectors.npy: atomic write, validated memory-mapped open."""

from __future__ import annotations

import numpy as np
import pytest

from hybridsearch.dense.store import VECTORS_FILE, open_vectors, write_vectors
from hybridsearch.errors import IndexFormatError


def test_round_trip_is_a_read_only_memmap(tmp_path) -> None:
    data = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    path = write_vectors(tmp_path / VECTORS_FILE, data)
    matrix = open_vectors(path, dimension=4, rows=5)
    assert isinstance(matrix, np.memmap)
    assert not matrix.flags.writeable
    np.testing.assert_array_equal(matrix, data)
    assert [p.name for p in tmp_path.iterdir()] == [VECTORS_FILE]  # no temp file left


def test_rewrite_replaces_and_empty_matrix_works(tmp_path) -> None:
    path = tmp_path / VECTORS_FILE
    write_vectors(path, np.ones((3, 2), dtype=np.float32))
    write_vectors(path, np.zeros((0, 2), dtype=np.float32))
    assert open_vectors(path, dimension=2).shape == (0, 2)


def test_write_refuses_wrong_dtype(tmp_path) -> None:
    with pytest.raises(ValueError, match="float32"):
        write_vectors(tmp_path / VECTORS_FILE, np.ones((2, 2)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array", "dimension", "rows", "message"),
    [
        (np.ones((2, 3), dtype=np.float64), 3, None, "float32"),
        (np.ones(3, dtype=np.float32), 3, None, "2-D"),
        (np.ones((2, 3), dtype=np.float32), 4, None, "dimension 3"),
        (np.ones((2, 3), dtype=np.float32), 3, 5, "expected 5"),
        (np.asfortranarray(np.ones((2, 3), dtype=np.float32)), 3, None, "C order"),
    ],
)
def test_open_rejects_bad_files_naming_them(tmp_path, array, dimension, rows, message) -> None:
    path = tmp_path / VECTORS_FILE
    np.save(path, array)
    with pytest.raises(IndexFormatError, match=message) as info:
        open_vectors(path, dimension, rows)
    assert str(path) in str(info.value)


def test_open_missing_or_garbage(tmp_path) -> None:
    with pytest.raises(IndexFormatError, match="not found"):
        open_vectors(tmp_path / VECTORS_FILE, 3)
    (tmp_path / VECTORS_FILE).write_bytes(b"not numpy")
    with pytest.raises(IndexFormatError, match="not a readable"):
        open_vectors(tmp_path / VECTORS_FILE, 3)
