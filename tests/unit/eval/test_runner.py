from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from hybridsearch.eval import Collection, EvalReport, format_table, run_evaluation

COLLECTION = Collection(
    corpus_path=Path("unused"),
    queries={"q1": "alpha", "q2": "beta", "q3": "gamma", "extra": "not judged"},
    qrels={"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}},
)


class FakeRetriever:
    """Answers q1 perfectly, q2 with the relevant doc second, q3 not at all."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.top_ks: list[int] = []

    def retrieve(self, queries: Mapping[str, str], *, top_k: int) -> dict[str, dict[str, float]]:
        self.batches.append(list(queries))
        self.top_ks.append(top_k)
        answers = {"q1": {"d1": 2.0, "d9": 1.0}, "q2": {"d9": 2.0, "d2": 1.0}}
        return {qid: answers[qid] for qid in queries if qid in answers}


def test_run_evaluation_chunks_and_scores() -> None:
    retriever = FakeRetriever()
    report = run_evaluation(
        retriever, COLLECTION, top_k=5, progress=False, name="fake", chunk_size=2
    )
    assert retriever.batches == [["q1", "q2"], ["q3"]]
    assert retriever.top_ks == [5, 5]
    assert report.num_queries == 3
    assert report.metrics["RR@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert report.per_query["q3"]["nDCG@10"] == 0.0
    assert set(report.run) == {"q1", "q2"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_evaluation_with_progress_bar(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar is drawn in place on a terminal, and as plain lines elsewhere."""
    run_evaluation(FakeRetriever(), COLLECTION, progress=True, name="bar")
    logged = capsys.readouterr().err  # not a terminal: plain lines, no redraws
    assert "\r" not in logged and logged.splitlines()[-1].startswith("bar: 100%")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run_evaluation(FakeRetriever(), COLLECTION, progress=True, name="bar")
    assert "3/3" in terminal.getvalue()


def test_run_evaluation_rejects_unasked_answers() -> None:
    class Liar:
        def retrieve(
            self, queries: Mapping[str, str], *, top_k: int
        ) -> dict[str, dict[str, float]]:
            return {"zzz": {"d": 1.0}}

    with pytest.raises(ValueError, match="unasked"):
        run_evaluation(Liar(), COLLECTION, progress=False)
    with pytest.raises(ValueError, match="top_k"):
        run_evaluation(FakeRetriever(), COLLECTION, top_k=0, progress=False)


def test_format_table() -> None:
    metrics = {"nDCG@10": 0.73456, "R@100": 0.9, "RR@10": 0.5, "AP": 0.12345}
    reports = [
        EvalReport("hybrid-min-max", metrics, {}, {}, 300, 1.0),
        EvalReport("bm25", dict.fromkeys(metrics, 0.0), {}, {}, 300, 1.0),
    ]
    table = format_table(reports).splitlines()
    assert table[0].split() == ["run", "nDCG@10", "R@100", "RR@10", "AP", "queries"]
    assert table[2].split() == ["hybrid-min-max", "0.735", "0.900", "0.500", "0.123", "300"]
    assert table[3].split() == ["bm25", "0.000", "0.000", "0.000", "0.000", "300"]
    assert len({len(line) for line in table}) == 1  # fixed width
