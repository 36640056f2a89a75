"""`hybridsearch eval` end to end on the tiny corpus with hand-made judgments."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hybridsearch.cli.app import main
from hybridsearch.config import ServerSettings
from hybridsearch.eval.trec import read_trec_run
from tests.conftest import FIXTURES, run_cli
from tests.integration.in_process import InProcessServer, in_process_server

QUERIES = FIXTURES / "tiny_queries.jsonl"
QRELS = FIXTURES / "tiny_qrels.tsv"
JUDGED = {"q1", "q2", "q3", "q4"}


def table_row(stdout: str, name: str) -> list[float]:
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return [float(cell) for cell in cells[1:]]
    raise AssertionError(f"no row {name!r} in:\n{stdout}")


def test_sparse_run_with_rm3_writes_a_trec_run(tiny_sparse_index: Path, tmp_path: Path) -> None:
    run_path = tmp_path / "bm25.trec"
    args = ["--index", str(tiny_sparse_index), "--queries", str(QUERIES), "--qrels", str(QRELS)]
    plain = run_cli("eval", *args, "--mode", "sparse", "--name", "bm25", "--no-progress")
    ndcg, recall, rr, ap, queries = table_row(plain.stdout, "bm25")
    assert queries == 4  # the judged queries only
    # q1: d01 (gain 2) first, d11 and d07 next; q2 and q3 share no term with their documents
    # (cook/food vs recipes; sports/match: "match" is in d08 and d12)
    assert 0.0 < ndcg < 1.0 and 0.0 < ap < 1.0 and 0.0 <= recall <= 1.0 and rr > 0.0
    expanded = run_cli(
        "eval",
        *args,
        "--mode",
        "sparse",
        "--rm3",
        "--fb-docs",
        "2",
        "--name",
        "rm3",
        "--run",
        str(run_path),
        "--no-progress",
    )
    assert table_row(expanded.stdout, "rm3")[-1] == 4
    run = read_trec_run(run_path)
    assert run.keys() == JUDGED
    assert next(iter(run["q1"])) == "d01"


def test_invalid_setting_is_a_one_line_error(tiny_sparse_index: Path) -> None:
    result = run_cli(
        "eval",
        "--index",
        str(tiny_sparse_index),
        "--queries",
        str(QUERIES),
        "--qrels",
        str(QRELS),
        "--mode",
        "sparse",
        "--rm3",
        "--fb-docs",
        "0",
        "--no-progress",
        check=False,
    )
    assert result.returncode == 2
    assert "prf.fb_docs" in result.stderr
    assert "Traceback" not in result.stderr


def test_sweep_writes_plot_and_csv(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    result = run_cli(
        "eval",
        "--index",
        str(tiny_hybrid_index),
        "--model",
        str(model_dir),
        "--queries",
        str(QUERIES),
        "--qrels",
        str(QRELS),
        "--sweep-alpha",
        "0:1:0.5",
        "--out-dir",
        str(out),
        "--no-progress",
    )
    png, csv_path = out / "run-alpha-sweep.png", out / "run-alpha-sweep.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    series = [(r["series"], r["alpha"]) for r in rows]
    assert series[:6] == [
        ("min_max", "0"),
        ("min_max", "0.5"),
        ("min_max", "1"),
        ("z_score", "0"),
        ("z_score", "0.5"),
        ("z_score", "1"),
    ]
    assert [s for s, _ in series[6:]] == ["BM25", "dense", "RRF"]
    assert all(0.0 < float(r["nDCG@10"]) <= 1.0 for r in rows)
    # Dense alone orders the whole corpus as alpha 1 does (BM25's list only adds ties at 0).
    by_key = {(r["series"], r["alpha"]): float(r["nDCG@10"]) for r in rows}
    assert by_key[("min_max", "1")] == by_key[("dense", "nan")]
    assert "best min_max: alpha" in result.stdout


def test_server_and_in_process_agree(
    hybrid_server: InProcessServer, tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    files = ["--queries", str(QUERIES), "--qrels", str(QRELS), "--no-progress", "--name", "r"]
    prf = ["--rm3", "--vector-prf", "average", "--prf-stage", "both"]
    remote = run_cli("eval", "--server", hybrid_server.address, *files, *prf)
    local = run_cli(
        "eval", "--index", str(tiny_hybrid_index), "--model", str(model_dir), *files, *prf
    )
    assert table_row(remote.stdout, "r") == table_row(local.stdout, "r")


def test_server_runs_take_the_connection_flags_and_report_rpc_errors_in_one_line(
    tiny_sparse_index: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = ["--queries", str(QUERIES), "--qrels", str(QRELS), "--no-progress", "--name", "r"]
    sparse = [*files, "--mode", "sparse", "--timeout", "10"]
    monkeypatch.delenv("HYBRIDSEARCH_TOKEN", raising=False)
    assert main(["eval", "--server", "127.0.0.1:1", *sparse]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE: ") and err.count("\n") == 1, err
    settings = ServerSettings(index=tiny_sparse_index, port=0, auth_tokens="s3cret")
    with in_process_server(settings) as server:
        assert main(["eval", "--server", server.address, *sparse]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: UNAUTHENTICATED: ") and err.count("\n") == 1, err
        assert main(["eval", "--server", server.address, "--token", "s3cret", *sparse]) == 0
        with_flag = table_row(capsys.readouterr().out, "r")
        monkeypatch.setenv("HYBRIDSEARCH_TOKEN", "s3cret")
        assert main(["eval", "--server", server.address, *sparse]) == 0
        assert table_row(capsys.readouterr().out, "r") == with_flag
    assert main(["eval", "--index", str(tiny_sparse_index), "--token", "x", *sparse]) == 2
    assert "--token* flags are for --server" in capsys.readouterr().err
