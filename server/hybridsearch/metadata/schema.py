"""A collection's schema: which metadata fields are filterable, with which type.

A schema is fixed when its collection (index) is created and recorded in the manifest. Each
declared field has a type and may be multi-valued (a JSON list of values of the type).
Metadata keys that are not declared are stored and returned, never filtered on.

Schema files (`hybridsearch index --schema FILE`) are JSON or TOML::

    {"fields": [{"name": "tenant", "type": "keyword"},
                {"name": "year", "type": "integer"},
                {"name": "tags", "type": "keyword", "multi_valued": true}]}

    [[fields]]
    name = "tenant"
    type = "keyword"
"""

from __future__ import annotations

import enum
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridsearch.errors import SchemaError

FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_FIELDS = 64
MAX_KEYWORD_BYTES = 256


class MetadataType(enum.Enum):
    """The type of a filterable metadata field."""

    KEYWORD = "keyword"  # a string matched exactly, case-sensitive
    INTEGER = "integer"  # a signed 64-bit integer
    FLOAT = "float"  # a finite 64-bit float
    BOOLEAN = "boolean"
    DATETIME = "datetime"  # an RFC 3339 instant with a time zone


@dataclass(frozen=True, slots=True)
class MetadataField:
    """One declared field."""

    name: str
    type: MetadataType
    multi_valued: bool = False

    def to_json(self) -> dict[str, Any]:
        """The field as a schema file / manifest writes it."""
        return {"name": self.name, "type": self.type.value, "multi_valued": self.multi_valued}


@dataclass(frozen=True, slots=True)
class CollectionSchema:
    """The declared fields of a collection, in declaration order (names unique)."""

    fields: tuple[MetadataField, ...] = ()

    def __post_init__(self) -> None:
        problem = schema_problem(self.fields)
        if problem is not None:
            raise SchemaError(problem)

    def field(self, name: str) -> MetadataField | None:
        """The declared field of this name, or None."""
        for declared in self.fields:
            if declared.name == name:
                return declared
        return None

    def to_json(self) -> dict[str, Any]:
        """The schema as a schema file / manifest writes it."""
        return {"fields": [f.to_json() for f in self.fields]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CollectionSchema:
        """Parse the JSON object of a schema; `SchemaError` names what is wrong."""
        raw_fields = obj.get("fields", [])
        if not isinstance(raw_fields, list):
            raise SchemaError("fields: must be a list")
        fields = []
        for i, raw in enumerate(raw_fields):
            if not isinstance(raw, Mapping):
                raise SchemaError(f"fields[{i}]: must be an object with name and type")
            unknown = set(raw) - {"name", "type", "multi_valued"}
            if unknown:
                raise SchemaError(f"fields[{i}]: unknown keys {sorted(unknown)}")
            name, kind = raw.get("name"), raw.get("type")
            multi = raw.get("multi_valued", False)
            if not isinstance(name, str):
                raise SchemaError(f"fields[{i}].name: must be a string")
            types = ", ".join(t.value for t in MetadataType)
            try:
                type_ = MetadataType(kind)
            except ValueError:
                raise SchemaError(f"fields[{i}].type: must be one of {types}") from None
            if not isinstance(multi, bool):
                raise SchemaError(f"fields[{i}].multi_valued: must be true or false")
            fields.append(MetadataField(name, type_, multi))
        return cls(tuple(fields))


def schema_problem(fields: Sequence[MetadataField]) -> str | None:
    """What is wrong with a list of declared fields, or None."""
    if len(fields) > MAX_FIELDS:
        return f"at most {MAX_FIELDS} fields may be declared (got {len(fields)})"
    seen: set[str] = set()
    for i, field in enumerate(fields):
        if not FIELD_NAME.fullmatch(field.name):
            return (
                f"fields[{i}].name: 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.' "
                f"(got {field.name[:64]!r})"
            )
        if field.name in seen:
            return f"fields[{i}].name: {field.name!r} is declared twice"
        seen.add(field.name)
    return None


def load_schema_file(path: Path) -> CollectionSchema:
    """A schema from a JSON or TOML file (by its suffix; JSON otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from exc
    try:
        obj = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SchemaError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if not isinstance(obj, Mapping):
        raise SchemaError(f"{path}: must hold an object with a `fields` list")
    try:
        return CollectionSchema.from_json(obj)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from exc
