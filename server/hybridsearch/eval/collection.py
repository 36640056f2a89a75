"""Test collections in the BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Qrels may also be in TREC form (``qid iter docid rel``); the format is detected from the
first non-blank line. Relevance is an integer; only ``rel > 0`` counts as relevant (Cranfield
carries ``0`` judgments, which the metrics treat as judged non-relevant).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hybridsearch.errors import CollectionFormatError
from hybridsearch.types import unicode_problem

_BEIR_COLUMNS = 3
_TREC_COLUMNS = 4
_HEADER_FIRST_COLUMN = frozenset({"query-id", "query_id", "queryid", "qid"})


@dataclass(frozen=True, slots=True)
class Collection:
    """A test collection: where its corpus is, its queries (id → text) and its judgments
    (query id → document id → relevance)."""

    corpus_path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def judged_queries(self) -> dict[str, str]:
        """The queries that have judgments, in qrels order: the ones evaluation runs."""
        return {qid: self.queries[qid] for qid in self.qrels}


def _fail(path: Path, line_number: int, message: str) -> CollectionFormatError:
    return CollectionFormatError(f"{path}:{line_number}: {message}")


def _read_lines(path: Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file; `CollectionFormatError` when it cannot be read, or
    naming the line of its first byte that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CollectionFormatError(f"{path}: cannot read {what} ({exc.strerror})") from exc
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line_number = data.count(b"\n", 0, exc.start) + 1
        raise _fail(path, line_number, f"not UTF-8 (byte 0x{data[exc.start]:02x})") from None


def read_queries(path: Path) -> dict[str, str]:
    """Read a BEIR ``queries.jsonl``: one ``{"_id": str, "text": str, ...}`` per line."""
    queries: dict[str, str] = {}
    lines = _read_lines(path, "queries")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, number, f"not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise _fail(path, number, "expected a JSON object")
        qid, text = record.get("_id"), record.get("text")
        if isinstance(qid, int) and not isinstance(qid, bool):
            qid = str(qid)
        if not isinstance(qid, str) or not qid:
            raise _fail(path, number, 'missing or non-string "_id"')
        if not isinstance(text, str):
            raise _fail(path, number, f'query {qid!r}: missing or non-string "text"')
        for name, value in (("_id", qid), ("text", text)):
            if (problem := unicode_problem(value)) is not None:
                raise _fail(path, number, f'"{name}": {problem}')
        if qid in queries:
            raise _fail(path, number, f"duplicate query id {qid!r}")
        queries[qid] = text
    return queries


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read qrels as BEIR TSV (``query-id corpus-id score``, header optional) or TREC
    (``qid iter docid rel``), detected from the first non-blank line."""
    lines = _read_lines(path, "qrels")
    qrels: dict[str, dict[str, int]] = {}
    columns = 0
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if columns == 0:
            columns = len(fields)
            if columns not in (_BEIR_COLUMNS, _TREC_COLUMNS):
                raise _fail(path, number, f"expected 3 (BEIR) or 4 (TREC) columns, found {columns}")
            if columns == _BEIR_COLUMNS and fields[0].lower() in _HEADER_FIRST_COLUMN:
                continue  # the BEIR header "query-id corpus-id score"
        if len(fields) != columns:
            raise _fail(path, number, f"expected {columns} columns, found {len(fields)}")
        qid, docid, rel = (
            (fields[0], fields[1], fields[2])
            if columns == _BEIR_COLUMNS
            else (fields[0], fields[2], fields[3])
        )
        if not _is_int(rel):
            raise _fail(path, number, f"relevance {rel!r} is not an integer")
        judged = qrels.setdefault(qid, {})
        if docid in judged and judged[docid] != int(rel):
            raise _fail(path, number, f"conflicting judgments for ({qid!r}, {docid!r})")
        judged[docid] = int(rel)
    return qrels


def load_beir(
    folder: str | Path,
    *,
    queries: str | Path | None = None,
    qrels: str | Path | None = None,
    split: str = "test",
) -> Collection:
    """Load a BEIR-layout collection.

    ``queries`` and ``qrels`` override ``<folder>/queries.jsonl`` and
    ``<folder>/qrels/<split>.tsv``. Every judged query must have a text.

    Raises:
        CollectionFormatError: a file is missing or malformed (file and line in the message).
    """
    root = Path(folder)
    corpus_path = root / "corpus.jsonl"
    if not corpus_path.is_file():
        raise CollectionFormatError(f"{corpus_path}: corpus not found")
    queries_path = Path(queries) if queries is not None else root / "queries.jsonl"
    qrels_path = Path(qrels) if qrels is not None else root / "qrels" / f"{split}.tsv"
    query_texts = read_queries(queries_path)
    judgments = read_qrels(qrels_path)
    if not judgments:
        raise CollectionFormatError(f"{qrels_path}: no judgments")
    missing = [qid for qid in judgments if qid not in query_texts]
    if missing:
        shown = ", ".join(repr(q) for q in missing[:5])
        raise CollectionFormatError(
            f"{qrels_path}: {len(missing)} judged queries have no text in {queries_path} "
            f"(first: {shown})"
        )
    return Collection(corpus_path=corpus_path, queries=query_texts, qrels=judgments)
