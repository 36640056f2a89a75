from __future__ import annotations

import math

import numpy as np
import pytest

from hybridsearch.prf import vector_prf_average, vector_prf_rocchio

Q = np.array([1.0, 0.0], dtype=np.float32)
FB = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)


def test_average_hand_computed() -> None:
    # (q + p1 + p2) / 3 = (1, 2) / 3 → unit: (1, 2) / √5
    got = vector_prf_average(Q, FB)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array([1, 2]) / math.sqrt(5), rtol=1e-6)


def test_rocchio_hand_computed() -> None:
    # .4 (1, 0) + .6 (0, 1) → unit: (.4, .6) / √.52
    got = vector_prf_rocchio(Q, FB)
    np.testing.assert_allclose(got, np.array([0.4, 0.6]) / math.sqrt(0.52), rtol=1e-6)
    got = vector_prf_rocchio(Q, np.array([[0.0, 1.0], [0.6, 0.8]], np.float32), alpha=1, beta=1)
    # q + mean = (1.3, 0.9)
    np.testing.assert_allclose(got, np.array([1.3, 0.9]) / math.hypot(1.3, 0.9), rtol=1e-6)


@pytest.mark.parametrize("empty", [np.zeros((0, 2), np.float32), np.zeros(0, np.float32)])
def test_no_feedback_returns_query_unchanged(empty: np.ndarray) -> None:
    q = np.array([3.0, 4.0], dtype=np.float32)
    for got in (vector_prf_average(q, empty), vector_prf_rocchio(q, empty)):
        np.testing.assert_array_equal(got, q)
        assert got is not q


def test_shape_and_value_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        vector_prf_average(Q, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="1-D"):
        vector_prf_average(FB, FB)
    with pytest.raises(ValueError, match="finite"):
        vector_prf_average(Q, np.array([[np.nan, 1.0]], np.float32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, "^alpha must be a finite number >= 0"),
        ({"beta": math.inf}, "^beta must be a finite number >= 0"),
        ({"alpha": 0.0, "beta": 0.0}, "^alpha and beta cannot both be 0"),
    ],
)
def test_rocchio_bad_weights_are_programming_errors(kwargs: dict[str, float], message: str) -> None:
    # Requests are validated before PRF (engine.request); here it is a caller's bug.
    with pytest.raises(ValueError, match=message):
        vector_prf_rocchio(Q, FB, **kwargs)
