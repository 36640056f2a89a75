from __future__ import annotations

import math

import pytest

from hybridsearch.eval import METRIC_NAMES, evaluate, per_query

QRELS = {"q1": {"d1": 2, "d2": 1, "d3": 0}, "q2": {"d4": 1}}
RUN = {
    "q1": {"d3": 3.0, "d1": 2.0, "d9": 1.5, "d2": 1.0},
    "q2": {"d8": 5.0, "d4": 4.0},
    "unjudged": {"d1": 1.0},
}
# q1: gains 0, 2, 0, 1 at ranks 1-4 → DCG 2/log2(3) + 1/log2(5); ideal 2/log2(2) + 1/log2(3)
NDCG_Q1 = (2 / math.log2(3) + 1 / math.log2(5)) / (2 + 1 / math.log2(3))
NDCG_Q2 = 1 / math.log2(3)


def test_metric_names() -> None:
    assert METRIC_NAMES == ("nDCG@10", "R@100", "RR@10", "AP")


def test_ndcg_hand_computed_two_queries() -> None:
    got = evaluate(RUN, QRELS)
    assert got["nDCG@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 2)
    assert got["RR@10"] == pytest.approx(0.5)
    assert got["R@100"] == pytest.approx(1.0)
    # q1: relevant at ranks 2 and 4 → (1/2 + 2/4) / 2; q2: 1/2
    assert got["AP"] == pytest.approx(0.5)


def test_per_query_values() -> None:
    table = per_query(RUN, QRELS)
    assert set(table) == {"q1", "q2"}
    assert table["q1"]["nDCG@10"] == pytest.approx(NDCG_Q1)
    assert table["q2"]["RR@10"] == pytest.approx(0.5)


def test_judged_query_missing_from_run_counts_zero() -> None:
    qrels = {**QRELS, "q3": {"d5": 1}}
    got = evaluate(RUN, qrels)
    assert got["nDCG@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 3)
    assert got["R@100"] == pytest.approx(2 / 3)
    assert per_query(RUN, qrels)["q3"] == dict.fromkeys(METRIC_NAMES, 0.0)


def test_empty_answer_counts_zero() -> None:
    got = evaluate({**RUN, "q2": {}}, QRELS)
    assert got["nDCG@10"] == pytest.approx(NDCG_Q1 / 2)


def test_empty_run_is_all_zero() -> None:
    assert evaluate({}, QRELS) == dict.fromkeys(METRIC_NAMES, 0.0)


def test_zero_relevance_is_not_relevant() -> None:
    got = evaluate({"q1": {"d3": 1.0}}, {"q1": {"d3": 0, "d1": 1}})
    assert got == dict.fromkeys(METRIC_NAMES, 0.0)


def test_empty_qrels_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate(RUN, {})


def test_every_metric_scores_tied_documents_in_the_served_order() -> None:
    """Equal scores rank by id ascending, as the server returns them, in all four metrics
    (trec_eval alone would put d2 before d1; its MS MARCO provider, for RR@10, d1 first)."""
    qrels = {"q": {"d1": 1}}
    got = per_query({"q": {"d2": 1.0, "d1": 1.0, "d0": 0.5}}, qrels)["q"]
    assert got["RR@10"] == pytest.approx(1.0)
    assert got["AP"] == pytest.approx(1.0)
    assert got["nDCG@10"] == pytest.approx(1.0)
    # and the served order is the rule, whatever order the run lists them in
    flipped = per_query({"q": {"d0": 0.5, "d1": 1.0, "d2": 1.0}}, qrels)["q"]
    assert flipped == got
    # a relevant document behind a tie with a smaller id ranks second everywhere
    second = per_query({"q": {"d1": 1.0, "d0": 1.0}}, qrels)["q"]
    assert second["RR@10"] == pytest.approx(0.5) and second["AP"] == pytest.approx(0.5)
    assert second["nDCG@10"] == pytest.approx(1 / math.log2(3))
