"""Records of the distributed build: JSON lines by `read_corpus`'s rules, Parquet rows by
their column names, bad records kept with their error, vectors round-tripping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.layout import shard_of
from hybridsearch.types import Document

pa = pytest.importorskip("pyarrow", reason="pyarrow comes with the extra ray")

from hybridsearch.sharding.records import (  # noqa: E402
    documents_table,
    row_document,
    split_table,
    table_documents,
    table_vectors,
    with_vectors,
)


def test_json_lines_and_parquet_rows_become_the_same_documents() -> None:
    line = json.dumps({"_id": "7", "title": "T", "text": "body", "metadata": {"year": 1999}})
    row = {"id": "7", "title": "T", "contents": "body", "metadata": '{"year": 1999}'}
    expected = Document("7", "T", "body", {"year": 1999})
    table = documents_table([line, row, "  "], 4, CollectionSchema())  # blank lines skipped
    assert table_documents(table) == [expected, expected]
    assert table.column("shard").to_pylist() == [shard_of("7", 4)] * 2
    # A struct column's null fields are absent fields; a map arrives as pairs.
    struct = row_document({"_id": "8", "text": "x", "metadata": {"a": 1, "b": None}})
    assert struct.metadata == {"a": 1}
    assert row_document({"_id": "9", "text": "x", "metadata": [("k", "v")]}).metadata == {"k": "v"}


def test_bad_records_keep_their_row_and_error() -> None:
    table = documents_table(['{"_id": "1", "text": "ok"}', "{not json", '{"title": "no id"}'],
                            2, CollectionSchema())  # fmt: skip
    parts, errors = split_table(table, 2)
    assert sum(p.num_rows for p in parts) == 1
    assert len(errors) == 2 and "not json" in errors[0]


def test_vectors_round_trip_through_the_table() -> None:
    table = documents_table(['{"_id": "1", "text": "a"}', '{"_id": "2", "text": "b"}'], 1,
                            CollectionSchema())  # fmt: skip
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert (table_vectors(with_vectors(table, vectors), 3) == vectors).all()
