from __future__ import annotations

from pathlib import Path

import pytest

from hybridsearch.eval import SweepRow, parse_sweep, plot_alpha_sweep, write_sweep_csv


def test_parse_inclusive_float_safe() -> None:
    got = parse_sweep("0.0:1.0:0.1")
    assert got == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert parse_sweep("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_sweep("0.3:0.3:0.1") == [0.3]
    assert parse_sweep("0:1:0.3") == [0.0, 0.3, 0.6, 0.9]  # stop not on the grid
    assert len(parse_sweep("0:1:0.01")) == 101


def test_parse_list_and_single() -> None:
    assert parse_sweep("0.5") == [0.5]
    assert parse_sweep(" 0.2, 0.4 ") == [0.2, 0.4]


@pytest.mark.parametrize(
    "spec", ["", "a:b:c", "0:1", "0:1:0", "0:1:-0.1", "1:0:0.1", "0:inf:0.1", "nan", "0:1e9:1e-9"]
)
def test_parse_errors(spec: str) -> None:
    with pytest.raises(ValueError, match="bad sweep"):
        parse_sweep(spec)


ROWS = [
    SweepRow("min_max", 0.0, {"nDCG@10": 0.6, "AP": 0.5}),
    SweepRow("min_max", 0.5, {"nDCG@10": 0.7, "AP": 0.55}),
    SweepRow("z_score", 0.5, {"nDCG@10": 0.71, "AP": 0.56}),
    SweepRow("min_max", 1.0, {"nDCG@10": 0.65, "AP": 0.52}),
]


def test_write_csv(tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    write_sweep_csv(ROWS, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "series,alpha,nDCG@10,AP"
    assert lines[2] == "min_max,0.5,0.700000,0.550000"
    assert len(lines) == 5


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep.png"
    plot_alpha_sweep(ROWS, {"BM25": 0.6, "dense": 0.65}, 0.69, out, "toy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 1000
    plot_alpha_sweep(ROWS, {}, None, tmp_path / "bare.png", "no references", metric="AP")
    assert (tmp_path / "bare.png").read_bytes()[:4] == b"\x89PNG"
