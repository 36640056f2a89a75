from __future__ import annotations

from pathlib import Path

import pytest

from hybridsearch.eval import read_trec_run, write_trec_run


def test_round_trip_keeps_order_scores_and_stable_ties(tmp_path: Path) -> None:
    run = {
        "q2": {"b": 0.5, "a": 0.5, "c": 1 / 3, "d": 2.0},
        "q1": {"x": -1.25},
    }
    path = tmp_path / "run.trec"
    write_trec_run(path, run, tag="hyb")
    lines = path.read_text().splitlines()
    assert lines[0] == "q2 Q0 d 1 2.0 hyb"
    assert [line.split()[2] for line in lines] == ["d", "b", "a", "c", "x"]
    back = read_trec_run(path)
    assert back == run
    assert list(back) == ["q2", "q1"]
    assert list(back["q2"]) == ["d", "b", "a", "c"]


def test_read_orders_by_rank_column(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("q Q0 b 2 1.0 t\nq Q0 a 1 1.0 t\n")
    assert list(read_trec_run(path)["q"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q Q0 a 1 1.0\n", "run.trec:1: expected 6 columns"),
        ("q Q0 a 1 1.0 t\nq Q0 b one 1.0 t\n", "run.trec:2: bad rank"),
        ("q Q0 a 1 1.0 t\nq Q0 a 2 0.5 t\n", "run.trec:2: document 'a' repeated"),
    ],
)
def test_bad_run_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.trec"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_trec_run(path)


def test_bad_tag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tag"):
        write_trec_run(tmp_path / "r", {}, tag="two words")
