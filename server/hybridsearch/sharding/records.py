"""Corpus records as the distributed build moves them: Arrow tables of parsed documents.

A record is a document of a JSON corpus file (BEIR ``_id``/``title``/``text``, Pyserini
``id``/``contents``; a file is parsed whole by `json_file_table` with `storage.corpus`'s own
per-file reader, so both builds read the same documents) or a Parquet row (``id`` or ``_id``,
``title``, ``text`` or ``contents``, optional ``metadata``: a struct, a map or a JSON object
string; a date, time or timestamp in it becomes its ISO 8601 string, a decimal of scale 0 an
int (every digit kept, as a JSON integer is read), any other decimal a float). Each
becomes one row of `DOCUMENT_SCHEMA`; a record that breaks the rules keeps its row with
``error`` set (naming the file, and the line of a JSON file), so the build can fail naming it,
or skip and count it (``--skip-bad-lines``). No Ray here: the Ray stages call these functions.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from hybridsearch.errors import CorpusError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.metadata.values import metadata_problem
from hybridsearch.sharding.layout import shard_of
from hybridsearch.storage.corpus import (
    ReadStats,
    file_records,
    open_corpus_bytes,
    parse_document,
    record_document,
)
from hybridsearch.types import Document

VECTOR_COLUMN = "vector"
DOCUMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("metadata", pa.string()),  # a JSON object; Arrow cannot hold every metadata shape
        ("shard", pa.int32()),
        ("error", pa.string()),  # "" for a good record, else what is wrong with it
    ]
)


def row_document(row: Mapping[str, Any]) -> Document:
    """One Parquet row as a Document (``id`` or ``_id``; ``text`` or ``contents``); ValueError
    says what is wrong."""
    doc_id = row["_id"] if row.get("_id") is not None else row.get("id")
    if isinstance(doc_id, decimal.Decimal):  # a decimal(20,0) id: its digits, as a JSON int
        doc_id = _decimal_number(doc_id)
    text = row["text"] if row.get("text") is not None else row.get("contents")
    metadata = record_metadata(row.get("metadata"))
    return parse_document({"_id": doc_id, "title": row.get("title"), "text": text,
                           "metadata": metadata})  # fmt: skip


def line_document(line: str) -> Document:
    """One JSON line as a Document, by `storage.corpus.read_corpus`'s rules."""
    return parse_document(json.loads(line))


def record_metadata(value: Any) -> Any:
    """A record's metadata as a JSON object: a Parquet struct's null fields are absent ones,
    a map arrives as key-value pairs, a string column holds JSON; dates, times and timestamps
    become ISO 8601 strings and decimals numbers (JSON has neither; see `_decimal_number`)."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValueError(f'"metadata" is not JSON ({exc})') from None
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {k: _json_value(v) for k, v in value}
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items() if v is not None}
    return value


def _json_value(value: Any) -> Any:
    """A metadata value of an Arrow column as JSON can hold it (see `record_metadata`)."""
    if isinstance(value, datetime.date | datetime.time):  # a datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return _decimal_number(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _decimal_number(value: decimal.Decimal) -> int | float:
    """A Parquet decimal as the number its digits would be in JSON: without a fractional part
    by its type (scale 0, or a negative scale), an int, every digit kept (an id-like
    ``decimal(20,0)`` would lose some as a float); else a float."""
    exponent = value.as_tuple().exponent  # minus the column's scale
    return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)


class _Rows:
    """The columns of a `DOCUMENT_SCHEMA` table being filled."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in DOCUMENT_SCHEMA.names}

    def document(self, doc: Document, shard_count: int) -> None:
        """Add a good document; `ValueError` when its metadata is not JSON (bytes, say)."""
        try:
            metadata = json.dumps(doc.metadata, ensure_ascii=False)
        except TypeError as exc:
            raise ValueError(f'"metadata": {exc}') from None
        self._append(doc.id, doc.title, doc.text, metadata, shard_of(doc.id, shard_count), "")

    def bad(self, error: str) -> None:
        """Add the row of a malformed record."""
        self._append("", "", "", "{}", -1, error)

    def _append(self, *values: Any) -> None:
        for name, value in zip(DOCUMENT_SCHEMA.names, values, strict=True):
            self.columns[name].append(value)

    def table(self) -> pa.Table:
        return pa.table(self.columns, schema=DOCUMENT_SCHEMA)


def json_file_table(
    name: str, data: bytes, shard_count: int, schema: CollectionSchema, *, strict: bool
) -> pa.Table:
    """The documents of one JSON corpus file (its whole bytes, plain or gzip), read by
    `storage.corpus.file_records` as the single-machine build reads the file: JSON lines
    split at ``\n`` only, a byte order mark dropped, a ``.json`` array or pretty-printed
    objects. A malformed line is a row with its error (``name:line: malformed line: ...``, the
    local build's words), or with ``strict`` a `CorpusError` at the file's first one."""
    rows = _Rows()
    for line_no, record in file_records(name, functools.partial(open_corpus_bytes, data),
                                        ReadStats()):  # fmt: skip
        try:
            rows.document(record_document(record, schema), shard_count)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            error = f"{name}:{line_no}: malformed line: {exc}"
            if strict:
                raise CorpusError(error) from None
            rows.bad(error)
    return rows.table()


def documents_table(
    records: Iterable[Mapping[str, Any] | str],
    shard_count: int,
    schema: CollectionSchema,
    *,
    source: str = "",
) -> pa.Table:
    """Parse records (Parquet rows of the file ``source``, or JSON lines) into a
    `DOCUMENT_SCHEMA` table; a bad one's error names ``source`` and shows the record."""
    rows = _Rows()
    for record in records:
        if isinstance(record, str) and not record.strip():
            continue  # a blank line, as read_corpus skips it
        try:
            doc = line_document(record) if isinstance(record, str) else row_document(record)
            problem = metadata_problem(schema, doc.metadata)
            if problem is not None:
                raise ValueError(problem)
            rows.document(doc, shard_count)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            shown = record if isinstance(record, str) else json.dumps(record, default=str)
            where = f"{source}: " if source else ""
            rows.bad(f"{where}malformed record: {exc} (record {shown[:80]!r})")
    return rows.table()


def table_documents(table: pa.Table) -> list[Document]:
    """The Documents of a `DOCUMENT_SCHEMA` table, in row order."""
    return [
        Document(row["id"], row["title"], row["text"], json.loads(row["metadata"]))
        for row in table.select(["id", "title", "text", "metadata"]).to_pylist()
    ]


def with_vectors(table: pa.Table, vectors: NDArray[np.float32]) -> pa.Table:
    """``table`` with a fixed-size-list ``vector`` column (one row per document)."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    return table.append_column(VECTOR_COLUMN, column)


def table_vectors(table: pa.Table, dimension: int) -> NDArray[np.float32]:
    """The ``vector`` column of a table as an ``(n, dimension)`` float32 matrix."""
    if table.num_rows == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    column = table.column(VECTOR_COLUMN).combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(table.num_rows, dimension)


def split_table(table: pa.Table, shard_count: int) -> tuple[list[pa.Table], list[str]]:
    """The good rows of ``table`` per shard (row order kept) and the errors of the bad ones."""
    shards = table.column("shard").to_numpy(zero_copy_only=False)
    errors = [e for e in table.column("error").to_pylist() if e]
    parts = [table.filter(pa.array(shards == number)) for number in range(shard_count)]
    return parts, errors


def concat_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """One table of several parts (the parts of one shard, in order)."""
    return pa.concat_tables(tables) if tables else DOCUMENT_SCHEMA.empty_table()
