"""`hybridsearch index` in this process: the summary line."""

from __future__ import annotations

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
