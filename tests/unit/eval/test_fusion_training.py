"""Adaptive fusion training: its nDCG@10 agrees with trec_eval, the fit learns a signal that
is there, the significance test behaves, and arm runs survive a save and load."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hybridsearch.eval import arm_runs
from hybridsearch.eval import fusion_training as ft
from hybridsearch.eval.metrics import evaluate
from hybridsearch.fusion.adaptive import FEATURE_NAMES, QueryStats
from hybridsearch.types import Normalization, RankedList


def test_ndcg_at_10_agrees_with_trec_eval() -> None:
    judged = {"a": 2, "b": 1, "c": 0, "z": 1}
    ranking = ["c", "b", "x", "a"]
    run = {"q": {doc: float(10 - i) for i, doc in enumerate(ranking)}}
    assert ft.ndcg_at_10(ranking, judged) == pytest.approx(evaluate(run, {"q": judged})["nDCG@10"])


def _query() -> arm_runs.QueryRun:
    """Two lists that disagree: BM25 ranks d0 first, dense d1."""
    sparse = RankedList([0, 1, 2], [3.0, 1.0, 0.5])
    dense = RankedList([1, 0, 2], [0.9, 0.2, 0.1])
    return arm_runs.QueryRun("q", QueryStats([1], 3), sparse, dense)


def test_grid_ndcg_moves_with_alpha() -> None:
    query = _query()
    gains = ft.grid_ndcg(query, ["d0", "d1", "d2"], {"d1": 1}, [0.0, 1.0], Normalization.MIN_MAX)
    assert gains[0] < gains[1] == pytest.approx(1.0)


def test_fit_learns_a_feature_that_decides_the_alpha() -> None:
    rng = np.random.default_rng(1)
    n = 400
    features = rng.normal(size=(n, len(FEATURE_NAMES)))
    dense_better = features[:, 0] > 0  # the first feature says which side is right
    alphas = np.array([0.1, 0.9])
    gains = np.where(dense_better[:, None], [[0.2, 0.8]], [[0.8, 0.2]])
    data = ft.TrainingSet(features, gains, alphas, np.array(["a", "b"] * (n // 2)))
    model = ft.fit(data, Normalization.MIN_MAX, l2=0.01)
    high, low = np.zeros(len(FEATURE_NAMES)), np.zeros(len(FEATURE_NAMES))
    high[0], low[0] = 2.0, -2.0
    assert model.alpha(high) > 0.7
    assert model.alpha(low) < 0.3


def test_randomization_test() -> None:
    same = np.array([0.1, 0.5, 0.9, 0.3])
    assert ft.randomization_test(same, same) == 1.0
    better = np.linspace(0.2, 0.9, 40)
    assert ft.randomization_test(better + 0.1, better) < 0.01


def test_arm_runs_round_trip(tmp_path: Path) -> None:
    runs = arm_runs.ArmRuns("tiny", ["d0", "d1", "d2"], {"q1": _query()}, {"q1": {"d1": 1}})
    path = tmp_path / "runs.json.gz"
    arm_runs.save(runs, path)
    back = arm_runs.load(path)
    assert back.ids == runs.ids and back.qrels == runs.qrels
    query = back.queries["q1"]
    assert query.sparse == runs.queries["q1"].sparse
    assert query.dense == runs.queries["q1"].dense
    assert list(query.stats.doc_freqs) == [1] and query.stats.num_docs == 3


def test_the_arm_run_cache_is_keyed_on_the_query_paths_code(tmp_path: Path) -> None:
    """Runs collected by other code of the query path are not reused."""
    package = Path(arm_runs.__file__).resolve().parent.parent
    copy = tmp_path / "hybridsearch"
    for part in arm_runs.QUERY_PATH:
        source = package / part
        if source.is_dir():
            shutil.copytree(source, copy / part)
        else:
            shutil.copy2(source, copy / part)
    assert arm_runs.stamp_of(copy) == arm_runs.code_stamp()
    dense = copy / "dense" / "exact.py"
    dense.write_text(dense.read_text() + "\n# another scoring\n")
    assert arm_runs.stamp_of(copy) != arm_runs.code_stamp()
    name = arm_runs.cache_file(tmp_path, "scifact", tmp_path / "idx", 1000).name
    assert name == f"scifact-idx-d1000-{arm_runs.code_stamp()}.json.gz"
    assert arm_runs.find_cached(tmp_path, "scifact") is None
    runs = arm_runs.ArmRuns("scifact", ["d0", "d1", "d2"], {"q1": _query()}, {"q1": {"d1": 1}})
    (tmp_path / "scifact-idx-d1000.json.gz").touch()  # older code's name: not found
    arm_runs.save(runs, tmp_path / name)
    assert arm_runs.find_cached(tmp_path, "scifact") == tmp_path / name
