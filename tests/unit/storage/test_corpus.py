"""Corpus readers: BEIR and Pyserini formats, gzip, malformed lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hybridsearch.errors import CorpusError
from hybridsearch.storage.corpus import ReadStats, count_lines, read_corpus


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_reads_beir_with_metadata(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        [json.dumps({"_id": "1", "title": "T", "text": "body", "metadata": {"k": [1]}})],
    )
    [doc] = list(read_corpus(path))
    assert (doc.id, doc.title, doc.text, dict(doc.metadata)) == ("1", "T", "body", {"k": [1]})


def test_reads_pyserini_gzip_and_directories(tmp_path: Path) -> None:
    folder = tmp_path / "coll"
    folder.mkdir()
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "y", "contents": "second"}) + "\n")
    write_lines(folder / "a.jsonl", [json.dumps({"id": "x", "contents": "first"}), ""])
    docs = list(read_corpus(folder))
    assert [(d.id, d.text, d.title) for d in docs] == [("x", "first", ""), ("y", "second", "")]
    assert count_lines(folder) == 3


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"title": "no id"}),
        json.dumps({"_id": "", "text": "empty id"}),
        json.dumps({"_id": "1", "text": 5}),
        json.dumps({"_id": "1", "text": "t", "metadata": [1]}),
        # Python's JSON reads these; a response's Struct cannot carry them.
        '{"_id": "1", "text": "t", "metadata": {"w": NaN}}',
        '{"_id": "1", "text": "t", "metadata": {"w": [1, {"v": -Infinity}]}}',
        '{"_id": "1", "text": "t", "metadata": {"n": 1' + "0" * 400 + "}}",
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"_id": "1", "text": "ok"}), bad])
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: malformed line"):
        list(read_corpus(path))


def test_skip_bad_lines_counts_them(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        ["garbage", json.dumps({"_id": "1", "text": "ok"}), "{", json.dumps({"_id": 2})],
    )
    stats = ReadStats()
    docs = list(read_corpus(path, skip_bad_lines=True, stats=stats))
    assert [d.id for d in docs] == ["1", "2"]
    assert (stats.bad_lines, stats.bad_line_numbers, stats.documents) == (2, [1, 3], 2)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        list(read_corpus(tmp_path / "nope.jsonl"))
