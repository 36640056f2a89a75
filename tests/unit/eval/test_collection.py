from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridsearch.errors import CollectionFormatError
from hybridsearch.eval import load_beir


def make(tmp_path: Path, qrels: str, queries: list[object] | None = None) -> Path:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "x"}\n')
    rows = (
        queries if queries is not None else [{"_id": "1", "text": "one"}, {"_id": 2, "text": "two"}]
    )
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "qrels").mkdir(exist_ok=True)
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    return tmp_path


def test_beir_layout(tmp_path: Path) -> None:
    folder = make(tmp_path, "query-id\tcorpus-id\tscore\n1\td1\t2\n1\td2\t0\n2\td3\t1\n")
    collection = load_beir(folder)
    assert collection.corpus_path == folder / "corpus.jsonl"
    assert collection.queries == {"1": "one", "2": "two"}
    assert collection.qrels == {"1": {"d1": 2, "d2": 0}, "2": {"d3": 1}}
    assert collection.judged_queries == {"1": "one", "2": "two"}


def test_only_judged_queries_are_evaluated(tmp_path: Path) -> None:
    collection = load_beir(make(tmp_path, "query-id\tcorpus-id\tscore\n2\td3\t1\n"))
    assert collection.judged_queries == {"2": "two"}


def test_trec_qrels_auto_detected_and_explicit_paths(tmp_path: Path) -> None:
    folder = make(tmp_path, "")
    trec = tmp_path / "qrels.trec"
    trec.write_text("1 0 d1 1\n\n2 0 d7 3\n")
    queries = tmp_path / "other.jsonl"
    queries.write_text('{"_id": "1", "text": "uno"}\n{"_id": "2", "text": "dos"}\n')
    collection = load_beir(folder, queries=queries, qrels=trec)
    assert collection.qrels == {"1": {"d1": 1}, "2": {"d7": 3}}
    assert collection.queries["1"] == "uno"


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("query-id\tcorpus-id\tscore\n1\td1\n", "test.tsv:2: expected 3 columns"),
        ("1 d1 x\n", "test.tsv:1: relevance 'x'"),
        ("query-id\tcorpus-id\tscore\n1\td1\thigh\n", "test.tsv:2: relevance 'high'"),
        ("1 d1 1\n1 d1 2\n", "test.tsv:2: conflicting"),
        ("1 d1 1 5 6\n", r"test.tsv:1: expected 3 \(BEIR\) or 4 \(TREC\)"),
        ("query-id\tcorpus-id\tscore\n", "no judgments"),
        ("9\td1\t1\n", "no text"),
    ],
)
def test_bad_qrels(tmp_path: Path, qrels: str, message: str) -> None:
    with pytest.raises(CollectionFormatError, match=message):
        load_beir(make(tmp_path, qrels))


def test_bad_queries_name_the_line(tmp_path: Path) -> None:
    folder = make(tmp_path, "1\td1\t1\n")
    (folder / "queries.jsonl").write_text('{"_id": "1", "text": "ok"}\n{not json\n')
    with pytest.raises(CollectionFormatError, match=r"queries.jsonl:2: not valid JSON"):
        load_beir(folder)
    with pytest.raises(CollectionFormatError, match=r"queries.jsonl:2: duplicate query id"):
        load_beir(
            make(tmp_path, "1\td1\t1\n", [{"_id": "1", "text": "a"}, {"_id": "1", "text": "b"}])
        )
    with pytest.raises(CollectionFormatError, match=r"queries.jsonl:1: query '1': missing"):
        load_beir(make(tmp_path, "1\td1\t1\n", [{"_id": "1"}]))


def test_queries_and_qrels_that_are_not_unicode_name_the_line(tmp_path: Path) -> None:
    folder = make(tmp_path, "1\td1\t1\n")
    queries = folder / "queries.jsonl"
    queries.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "\\ud83d"}\n')
    with pytest.raises(
        CollectionFormatError,
        match=r'queries.jsonl:2: "text": not valid Unicode \(a lone surrogate \\ud83d',
    ):
        load_beir(folder)
    queries.write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n')
    with pytest.raises(CollectionFormatError, match=r"queries.jsonl:2: not UTF-8 \(byte 0xe9\)"):
        load_beir(folder)
    queries.write_text('{"_id": "1", "text": "ok"}\n')
    (folder / "qrels" / "test.tsv").write_bytes(b"1\td1\t1\n1\td\xff\t1\n")
    with pytest.raises(CollectionFormatError, match=r"test.tsv:2: not UTF-8 \(byte 0xff\)"):
        load_beir(folder)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CollectionFormatError, match="corpus not found"):
        load_beir(tmp_path)
    folder = make(tmp_path, "1\td1\t1\n")
    with pytest.raises(CollectionFormatError, match="cannot read qrels"):
        load_beir(folder, split="dev")
