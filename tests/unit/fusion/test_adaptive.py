"""Adaptive fusion: the shipped model loads fast, a bad model file is refused naming it, and
the fused list is interpolation at the chosen alpha."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from hybridsearch.fusion import fuse_interpolate
from hybridsearch.fusion.adaptive import (
    DEFAULT_MODEL_PATH,
    FEATURE_NAMES,
    AdaptiveModel,
    AdaptiveModelError,
    QueryStats,
    fuse_adaptive,
    query_features,
)
from hybridsearch.types import RankedList

SPARSE = RankedList([1, 2, 3, 5], [10.0, 6.0, 2.0, 1.0])
DENSE = RankedList([2, 4, 1], [0.9, 0.7, 0.5])
STATS = QueryStats(doc_freqs=[1, 3], num_docs=10)


def doc_id(ordinal: int) -> str:
    return f"doc{ordinal}"


def test_the_shipped_model_loads_in_under_50_ms() -> None:
    AdaptiveModel.load(DEFAULT_MODEL_PATH)  # warm the file cache: the bound is on parsing
    started = time.perf_counter()
    model = AdaptiveModel.load(DEFAULT_MODEL_PATH)
    assert time.perf_counter() - started < 0.05
    assert 0.0 <= model.alpha(np.zeros(len(FEATURE_NAMES))) <= 1.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "other"}', "format must be"),
        ("[]", "expected a JSON object"),
    ],
)
def test_a_corrupted_model_file_is_refused_naming_it(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "model.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AdaptiveModelError, match=problem) as caught:
        AdaptiveModel.load(path)
    assert str(path) in str(caught.value)


def test_a_model_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    raw = json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    raw["weights"] = raw["weights"][:-1]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(AdaptiveModelError, match="weights must have shape"):
        AdaptiveModel.load(path)


def test_a_missing_model_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(AdaptiveModelError, match="cannot read it") as caught:
        AdaptiveModel.load(path)
    assert str(path) in str(caught.value)


def test_features_of_two_lists() -> None:
    values = dict(
        zip(
            FEATURE_NAMES,
            query_features(STATS, SPARSE.scores, DENSE.scores, SPARSE.ordinals, DENSE.ordinals),
            strict=True,
        )
    )
    assert values["dense_top"] == pytest.approx(0.9)
    assert values["dense_drop"] == pytest.approx(0.4)  # fewer than 10: the last one
    assert values["sparse_drop"] == pytest.approx(0.9)
    assert values["overlap"] == pytest.approx(0.2)  # ordinals 1 and 2
    assert values["query_terms"] == pytest.approx(np.log1p(2))
    assert 0.0 < values["mean_idf"] < 1.0


def test_empty_lists_give_zero_features() -> None:
    empty = np.zeros(0)
    features = query_features(
        QueryStats([], 0), empty, empty, empty.astype(np.int64), empty.astype(np.int64)
    )
    assert features.tolist() == [0.0] * len(FEATURE_NAMES)


def test_adaptive_is_interpolation_at_the_chosen_alpha() -> None:
    model = AdaptiveModel.load(DEFAULT_MODEL_PATH)
    fused, choice = fuse_adaptive(SPARSE, DENSE, model=model, stats=STATS, doc_id=doc_id)
    assert list(choice.features) == list(FEATURE_NAMES)
    plain = fuse_interpolate(
        SPARSE, DENSE, alpha=choice.alpha, normalization=model.normalization, doc_id=doc_id
    )
    assert [(d.ordinal, d.score) for d in fused] == [(d.ordinal, d.score) for d in plain]


def test_the_alpha_follows_the_model(tmp_path: Path) -> None:
    """A model that only trusts dense when its top cosine is high moves alpha with it."""
    f = len(FEATURE_NAMES)
    weights = np.zeros((2, f))
    weights[1, 0] = 5.0  # dense_top raises the logit of alpha 0.9
    model = AdaptiveModel(
        alphas=np.array([0.1, 0.9]),
        mean=np.zeros(f),
        scale=np.ones(f),
        weights=weights,
        bias=np.zeros(2),
        normalization=AdaptiveModel.load(DEFAULT_MODEL_PATH).normalization,
    )
    path = tmp_path / "m.json"
    model.save(path)
    loaded = AdaptiveModel.load(path)
    low, high = np.zeros(f), np.zeros(f)
    high[0] = 1.0
    assert loaded.alpha(low) == pytest.approx(0.5)
    assert loaded.alpha(high) > 0.85
