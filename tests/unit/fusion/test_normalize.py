from __future__ import annotations

import math

import numpy as np
import pytest

from hybridsearch.fusion import missing_floor, normalize_scores
from hybridsearch.types import Normalization

Z = math.sqrt(1.5)  # z of the extremes of three equally spaced values


def test_min_max_hand_computed() -> None:
    out = normalize_scores([10.0, 6.0, 2.0], Normalization.MIN_MAX)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [1.0, 0.5, 0.0])


def test_min_max_all_equal_is_all_one() -> None:
    out = normalize_scores([3.0, 3.0, 3.0], Normalization.MIN_MAX)
    np.testing.assert_array_equal(out, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(normalize_scores([7.5], Normalization.MIN_MAX), [1.0])


def test_z_score_hand_computed_population_std() -> None:
    out = normalize_scores([10.0, 6.0, 2.0], Normalization.Z_SCORE)
    np.testing.assert_allclose(out, [Z, 0.0, -Z])


def test_z_score_zero_std_is_all_zero() -> None:
    out = normalize_scores([4.0, 4.0], Normalization.Z_SCORE)
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert not np.isnan(out).any()


def test_none_is_identity_copy() -> None:
    raw = np.array([1.5, -2.0], dtype=np.float32)
    out = normalize_scores(raw, Normalization.NONE)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.5, -2.0])
    out[0] = 9.0
    assert raw[0] == 1.5


@pytest.mark.parametrize("method", list(Normalization))
def test_empty(method: Normalization) -> None:
    out = normalize_scores([], method)
    assert out.shape == (0,)
    assert missing_floor(out, method) == 0.0


def test_missing_floor() -> None:
    assert missing_floor(np.array([1.0, 0.5, 0.0]), Normalization.MIN_MAX) == 0.0
    assert missing_floor(np.array([Z, 0.0, -Z]), Normalization.Z_SCORE) == pytest.approx(-Z)
    assert missing_floor(np.array([10.0, -3.0]), Normalization.NONE) == -3.0
