"""CollectionSchema: parsing JSON/TOML schema files, and what a schema may declare."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hybridsearch.errors import SchemaError
from hybridsearch.metadata.schema import (
    CollectionSchema,
    MetadataField,
    MetadataType,
    load_schema_file,
)

JSON_SCHEMA = """{"fields": [{"name": "tenant", "type": "keyword"},
  {"name": "year", "type": "integer"},
  {"name": "tags", "type": "keyword", "multi_valued": true}]}"""
TOML_SCHEMA = """
[[fields]]
name = "tenant"
type = "keyword"

[[fields]]
name = "year"
type = "integer"

[[fields]]
name = "tags"
type = "keyword"
multi_valued = true
"""
EXPECTED = CollectionSchema(
    (
        MetadataField("tenant", MetadataType.KEYWORD),
        MetadataField("year", MetadataType.INTEGER),
        MetadataField("tags", MetadataType.KEYWORD, multi_valued=True),
    )
)


@pytest.mark.parametrize(("suffix", "text"), [(".json", JSON_SCHEMA), (".toml", TOML_SCHEMA)])
def test_schema_files_in_json_and_toml(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"schema{suffix}"
    path.write_text(text)
    assert load_schema_file(path) == EXPECTED
    assert CollectionSchema.from_json(EXPECTED.to_json()) == EXPECTED
    assert EXPECTED.field("year") == MetadataField("year", MetadataType.INTEGER)
    assert EXPECTED.field("missing") is None


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"fields": [{"name": "a", "type": "text"}]}, "fields[0].type: must be one of keyword"),
        ({"fields": [{"name": "a b", "type": "keyword"}]}, "fields[0].name: 1 to 64"),
        ({"fields": [{"type": "keyword"}]}, "fields[0].name: must be a string"),
        (
            {"fields": [{"name": "a", "type": "integer"}, {"name": "a", "type": "float"}]},
            "fields[1].name: 'a' is declared twice",
        ),
        ({"fields": [{"name": "a", "type": "float", "multi": True}]}, "unknown keys ['multi']"),
        ({"fields": [{"name": f"f{i}", "type": "float"} for i in range(65)]}, "at most 64"),
        ({"fields": "tenant"}, "fields: must be a list"),
    ],
)
def test_malformed_schemas_name_the_problem(obj: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=re.escape(message)):
        CollectionSchema.from_json(obj)


def test_a_malformed_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text("{not json")
    with pytest.raises(SchemaError, match=r"schema\.json: not valid json"):
        load_schema_file(path)
