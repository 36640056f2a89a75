"""Typed metadata values: what a declared field accepts, and the reasons for what it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybridsearch.engine.document_rules import IngestLimits, document_problem
from hybridsearch.errors import BuildError, CorpusError
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.metadata.values import metadata_problem, parse_rfc3339, typed_metadata
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.corpus import ReadStats, read_corpus
from hybridsearch.types import Document

SCHEMA = CollectionSchema(
    (
        MetadataField("tenant", MetadataType.KEYWORD),
        MetadataField("year", MetadataType.INTEGER),
        MetadataField("price", MetadataType.FLOAT),
        MetadataField("public", MetadataType.BOOLEAN),
        MetadataField("at", MetadataType.DATETIME),
        MetadataField("tags", MetadataType.KEYWORD, multi_valued=True),
    )
)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"year": "2020"}, 'metadata.year: expected an integer (got "2020")'),
        ({"year": 2020.5}, "metadata.year: expected an integer (got 2020.5)"),
        # The value as the caller wrote it (JSON), never a Python repr; strings escaped.
        ({"year": True}, "metadata.year: expected an integer (got true)"),
        (
            {"year": {"a": None, "b": [False]}},
            'metadata.year: expected an integer (got {"a": null, "b": [false]})',
        ),
        (
            {"public": 'yes\nno"q\x00'},
            'metadata.public: expected true or false (got "yes\\nno\\"q\\u0000")',
        ),
        ({"year": 2**63}, "metadata.year: an integer must fit in 64 bits"),
        # 2^60 as a protobuf Struct carries it (a double): not "expected an integer (got 1e18)".
        (
            {"year": float(2**60)},
            "metadata.year: expected an integer within ±2^53 when sent as a number (got "
            "1152921504606846976)",
        ),
        # Past 64 bits: said so, never the number's hundreds of digits.
        ({"year": 1e300}, "metadata.year: an integer must fit in 64 bits (signed)"),
        ({"year": -1e19}, "metadata.year: an integer must fit in 64 bits (signed)"),
        # -2^63 fits in 64 bits: refused for the double's precision, not its size.
        ({"year": -float(2**63)}, "metadata.year: expected an integer within ±2^53"),
        ({"year": [2020]}, "metadata.year: expected a single value, not a list"),
        ({"tenant": 42}, "metadata.tenant: expected a string (got 42)"),
        ({"tenant": "x" * 257}, "metadata.tenant: a keyword is at most 256 bytes"),
        ({"tenant": "é" * 129}, "metadata.tenant: a keyword is at most 256 bytes"),
        ({"price": float("nan")}, "metadata.price: expected a finite number (got nan)"),
        ({"price": float("inf")}, "metadata.price: expected a finite number"),
        ({"price": "1.5"}, "metadata.price: expected a number"),
        ({"public": 1}, "metadata.public: expected true or false (got 1)"),
        ({"public": 0}, "metadata.public: expected true or false (got 0)"),
        ({"at": "2020-01-01"}, "metadata.at: expected an RFC 3339 datetime with a time zone"),
        ({"at": "2020-01-01T00:00:00"}, "metadata.at: expected an RFC 3339 datetime"),
        ({"at": "2020-02-30T00:00:00Z"}, "metadata.at: expected an RFC 3339 datetime"),
        ({"at": 1577836800}, "metadata.at: expected an RFC 3339 datetime string"),
        ({"tags": ["a", 1]}, "metadata.tags[1]: expected a string (got 1)"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_problem_naming_the_field(
    metadata: dict[str, Any], reason: str
) -> None:
    problem = metadata_problem(SCHEMA, metadata)
    assert problem is not None and problem.startswith(reason), problem
    doc_problem = document_problem(Document("d", "", "x", metadata), IngestLimits(), SCHEMA)
    assert doc_problem == problem


def test_good_values_null_absent_and_undeclared_keys_are_accepted() -> None:
    metadata = {
        "tenant": "x" * 256,
        "year": -(2**63),
        "price": 3,  # an integer is a float field's number
        "public": False,
        "at": "2020-01-01T01:00:00.1234567+01:00",
        "tags": [],
        "other": {"anything": [1, "x"]},  # undeclared: stored only
    }
    assert metadata_problem(SCHEMA, metadata) is None
    typed = typed_metadata(SCHEMA, metadata)
    assert typed["price"] == [3.0] and isinstance(typed["price"][0], float)
    assert typed["at"] == [parse_rfc3339("2020-01-01T00:00:00.123456Z")]
    assert typed["tags"] == []
    assert metadata_problem(SCHEMA, {"year": None}) is None
    assert typed_metadata(SCHEMA, {})["year"] == []
    assert document_problem(Document("d", "", "x", {"year": "x"}), IngestLimits()) is None


def test_rfc3339_instants_in_microseconds_since_the_epoch() -> None:
    assert parse_rfc3339("1970-01-01T00:00:00Z") == 0
    assert parse_rfc3339("1970-01-01T01:00:00+01:00") == 0
    assert parse_rfc3339("1969-12-31T23:59:59.999999Z") == -1
    assert parse_rfc3339("1970-01-01t00:00:01.5z") == 1_500_000
    assert parse_rfc3339("1970-01-01T00:00:00") is None


def test_a_corpus_line_with_wrongly_typed_metadata_is_a_bad_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        {"_id": "a", "text": "x", "metadata": {"year": 2020}},
        {"_id": "b", "text": "x", "metadata": {"year": "2020"}},
        {"_id": "c", "text": "x"},
    ]
    corpus.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"corpus.jsonl:2: .*metadata.year: expected an integer"):
        list(read_corpus(corpus, schema=SCHEMA))
    stats = ReadStats()
    docs = list(read_corpus(corpus, schema=SCHEMA, skip_bad_lines=True, stats=stats))
    assert [d.id for d in docs] == ["a", "c"] and stats.bad_line_numbers == [2]
    with pytest.raises(BuildError, match=r"document 'b': metadata\.year"):
        build_index(list(read_corpus(corpus)), tmp_path / "idx", encoder=None, schema=SCHEMA)
    assert not (tmp_path / "idx").exists()
