"""Records of the distributed build: JSON lines by `read_corpus`'s rules, Parquet rows by
their column names, bad records kept with their error, vectors round-tripping."""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path

import numpy as np
import pytest

from hybridsearch.errors import CorpusError
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.sharding.layout import shard_of
from hybridsearch.types import Document

pa = pytest.importorskip("pyarrow", reason="pyarrow comes with the extra ray")

from hybridsearch.sharding.records import (  # noqa: E402
    documents_table,
    json_file_table,
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


def test_a_lone_surrogate_escape_is_a_bad_record_of_the_distributed_build() -> None:
    data = b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "\\ud83d"}\n'
    table = json_file_table("c.jsonl", data, 2, CollectionSchema(), strict=False)
    assert table.column("id").to_pylist() == ["1", ""]
    assert table.column("error").to_pylist() == [
        "", "c.jsonl:2: malformed line: text: not valid Unicode (a lone surrogate \\ud83d "
        "at character 1)"]  # fmt: skip
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: malformed line: text: not valid"):
        json_file_table("c.jsonl", data, 2, CollectionSchema(), strict=True)


def test_vectors_round_trip_through_the_table() -> None:
    table = documents_table(['{"_id": "1", "text": "a"}', '{"_id": "2", "text": "b"}'], 1,
                            CollectionSchema())  # fmt: skip
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert (table_vectors(with_vectors(table, vectors), 3) == vectors).all()


def test_parquet_dates_and_decimals_become_json_and_other_values_are_bad_records() -> None:
    when = datetime.date(2024, 2, 29)
    at = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.UTC)
    row = {"_id": "1", "text": "x", "metadata": {"when": when, "at": at,
                                                  "price": decimal.Decimal("9.50"),
                                                  "tags": [{"on": when}]}}  # fmt: skip
    assert row_document(row).metadata == {
        "when": "2024-02-29", "at": "2024-02-29T12:30:00+00:00", "price": 9.5,
        "tags": [{"on": "2024-02-29"}],
    }  # fmt: skip
    blob = {"_id": "2", "text": "y", "metadata": {"blob": b"\x00"}}
    table = documents_table([row, blob], 2, CollectionSchema(), source="part-0.parquet")
    parts, errors = split_table(table, 2)
    assert sum(p.num_rows for p in parts) == 1
    assert len(errors) == 1 and errors[0].startswith("part-0.parquet: malformed record: ")
    assert "bytes is not JSON serializable" in errors[0]


def test_parquet_decimals_of_scale_0_are_integers_as_in_json(tmp_path: Path) -> None:
    """A decimal(20,0) keeps every digit (a float would not), and fits a declared integer
    field; a decimal with a scale is a float: the documents of the JSON equivalent."""
    import pyarrow.parquet as pq

    metadata = pa.array(
        [{"serial": decimal.Decimal("12345678901234567891"), "year": decimal.Decimal(2024),
          "price": decimal.Decimal("9.50")}],
        pa.struct([("serial", pa.decimal128(20, 0)), ("year", pa.decimal128(4, 0)),
                   ("price", pa.decimal128(10, 2))]),
    )  # fmt: skip
    path = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"_id": ["1"], "text": ["x"], "metadata": metadata}), path)
    schema = CollectionSchema((MetadataField("year", MetadataType.INTEGER),))
    table = documents_table(pq.read_table(path).to_pylist(), 1, schema, source=str(path))
    line = ('{"_id": "1", "text": "x", "metadata": '
            '{"serial": 12345678901234567891, "year": 2024, "price": 9.50}}')  # fmt: skip
    assert table.column("error").to_pylist() == [""]
    assert table_documents(table) == table_documents(documents_table([line], 1, schema))
    assert table_documents(table)[0].metadata["serial"] == 12345678901234567891


def test_a_parquet_id_of_a_decimal_of_scale_0_is_read_as_a_json_integer_id_is(
    tmp_path: Path,
) -> None:
    """A numeric JSON id is taken as its digits; a decimal(20,0) id was a bad record."""
    import pyarrow.parquet as pq

    ids = pa.array([decimal.Decimal("12345678901234567891")], pa.decimal128(20, 0))
    path = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"_id": ids, "text": ["x"]}), path)
    table = documents_table(pq.read_table(path).to_pylist(), 1, CollectionSchema(), source="p")
    line = '{"_id": 12345678901234567891, "text": "x"}'
    assert table.column("error").to_pylist() == [""]
    assert table_documents(table) == table_documents(documents_table([line], 1, CollectionSchema()))
    assert table_documents(table)[0].id == "12345678901234567891"
