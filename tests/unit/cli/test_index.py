"""`hybridsearch index` in this process: the summary line."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from hybridsearch.cli.app import main

CORPUS = "\n".join(f'{{"_id": "d{i}", "title": "", "text": "word{i % 5} text"}}' for i in range(30))


def test_summary_reports_documents_per_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(CORPUS + "\n")
    out = tmp_path / "index"
    assert main(["index", "--corpus", str(corpus), "--out", str(out),
                 "--no-dense", "--no-progress"]) == 0  # fmt: skip
    summary = capsys.readouterr().out
    found = re.search(
        r"indexed 30 documents into .* in ([0-9.]+) s \(([0-9.]+) documents/s\)", summary
    )
    assert found is not None, summary
    assert float(found.group(2)) > 0


def test_an_unreadable_corpus_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "latin1.jsonl"
    corpus.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "caf\xe9"}\n')
    truncated = tmp_path / "t.jsonl.gz"
    truncated.write_bytes(gzip.compress(CORPUS.encode() * 20)[:300])
    for path, message in [
        (corpus, "latin1.jsonl:2: malformed line: not UTF-8 (byte 0xe9"),
        (truncated, "t.jsonl.gz: truncated or damaged gzip"),
    ]:
        # ingest reads the corpus once before it connects (a malformed line it meets while
        # streaming: tests/integration/test_ingest_cli.py)
        for command in ("index", "ingest") if path is truncated else ("index",):
            target = ["--out", str(tmp_path / "idx")] if command == "index" else []
            argv = [command, "--corpus", str(path), *target, "--no-progress"]
            extra = ["--no-dense"] if command == "index" else ["--server", "127.0.0.1:1"]
            assert main([*argv, *extra]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "idx"),
                 "--no-dense", "--no-progress", "--skip-bad-lines"]) == 0  # fmt: skip
    assert "indexed 1 documents" in capsys.readouterr().out
