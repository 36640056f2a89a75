"""Typed metadata values: checking a document's declared fields and normalising their values.

A declared field's value in a document's ``metadata`` object is JSON: a string for keyword and
datetime fields, a number for integer and float fields, ``true``/``false`` for boolean fields;
a list of such values when the field is multi-valued. ``null`` (or an absent key, or an empty
list) means no value. Values are normalised to what both filter evaluators compare:

- keyword: the string (at most `MAX_KEYWORD_BYTES` bytes of UTF-8);
- integer: a Python int in the signed 64-bit range (a bool is not an integer);
- float: a finite float (an integer is accepted and converted; ``-0.0`` becomes ``0.0``);
- boolean: a bool (0 and 1 are not booleans);
- datetime: microseconds since the Unix epoch, from RFC 3339 text with a time zone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hybridsearch.metadata.schema import (
    MAX_KEYWORD_BYTES,
    CollectionSchema,
    MetadataField,
    MetadataType,
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 3339: date 'T' time, optional fraction, then Z or an offset (Python parses the rest).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")

#: A normalised value (see the module docstring).
Value = str | int | float | bool


class MetadataValueError(ValueError):
    """A declared field holds a value of the wrong type."""


def datetime_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_rfc3339(text: str) -> int | None:
    """Microseconds since the epoch of RFC 3339 text with a zone; None when it is not that.

    Fractions beyond microseconds are truncated.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    fraction = match.group(1) or ""
    head = text[: match.start(1)] if fraction else text[: match.start(2)]
    zone = match.group(2)
    zone = "+00:00" if zone in ("Z", "z") else zone
    micros = (fraction[1:] + "000000")[:6] if fraction else "000000"
    try:
        moment = datetime.fromisoformat(f"{head.replace('t', 'T')}.{micros}{zone}")
    except ValueError:
        return None
    return datetime_micros(moment)


def _describe(raw: Any) -> str:
    """``raw`` as the caller wrote it (JSON: ``true``, ``null``, ``{"a": 1}``, a string quoted
    and escaped), at most 40 characters; numbers as Python prints them (``nan``, ``2020.5``)."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        text = repr(raw)
    else:
        text = json.dumps(raw, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_inexact_integer(raw: Any) -> bool:
    """A whole double past 2^53 (where doubles skip integers): an integer that a protobuf
    Struct, or a JSON number written in exponent form, could not carry exactly."""
    return isinstance(raw, float) and raw.is_integer() and abs(raw) > 2**53


def _inexact_integer_reason(raw: float) -> str:
    if not INT64_MIN <= raw <= INT64_MAX:  # said so, never the number's hundreds of digits
        return "an integer must fit in 64 bits (signed)"
    return (
        f"expected an integer within ±2^53 when sent as a number (got {int(raw)}): a double, "
        "as a protobuf Struct holds every number, is not exact beyond it"
    )


def normalize_value(field: MetadataField, raw: Any) -> Value:
    """One value of ``field``, normalised; `MetadataValueError` says what is wrong."""
    kind = field.type
    if kind is MetadataType.KEYWORD:
        if not isinstance(raw, str):
            raise MetadataValueError(f"expected a string (got {_describe(raw)})")
        if len(raw.encode("utf-8")) > MAX_KEYWORD_BYTES:
            raise MetadataValueError(f"a keyword is at most {MAX_KEYWORD_BYTES} bytes of UTF-8")
        return raw
    if kind is MetadataType.INTEGER:
        if _is_inexact_integer(raw):
            raise MetadataValueError(_inexact_integer_reason(raw))
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise MetadataValueError(f"expected an integer (got {_describe(raw)})")
        if not INT64_MIN <= raw <= INT64_MAX:
            raise MetadataValueError("an integer must fit in 64 bits (signed)")
        return raw
    if kind is MetadataType.FLOAT:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise MetadataValueError(f"expected a number (got {_describe(raw)})")
        value = float(raw)
        if not math.isfinite(value):
            raise MetadataValueError(f"expected a finite number (got {_describe(raw)})")
        return value + 0.0  # -0.0 -> 0.0: both evaluators then agree that it equals 0
    if kind is MetadataType.BOOLEAN:
        if not isinstance(raw, bool):
            raise MetadataValueError(f"expected true or false (got {_describe(raw)})")
        return raw
    if not isinstance(raw, str):
        raise MetadataValueError(f"expected an RFC 3339 datetime string (got {_describe(raw)})")
    micros = parse_rfc3339(raw)
    if micros is None:
        raise MetadataValueError(
            f'expected an RFC 3339 datetime with a time zone, like "2020-01-31T12:00:00Z" '
            f"(got {_describe(raw)})"
        )
    return micros


def field_values(field: MetadataField, raw: Any) -> list[Value]:
    """The normalised values of ``field`` given its raw JSON (None: no value)."""
    if raw is None:
        return []
    if isinstance(raw, list):
        if not field.multi_valued:
            raise MetadataValueError(
                "expected a single value, not a list (the field is single-valued)"
            )
        values = []
        for i, item in enumerate(raw):
            try:
                values.append(normalize_value(field, item))
            except MetadataValueError as exc:
                raise MetadataValueError(f"[{i}]: {exc}") from None
        return values
    return [normalize_value(field, raw)]


def typed_metadata(schema: CollectionSchema, metadata: Mapping[str, Any]) -> dict[str, list[Value]]:
    """Every declared field's normalised values (an empty list: no value).

    Raises:
        MetadataValueError: naming the first bad field, e.g.
            ``metadata.year: expected an integer (got "2020")``.
    """
    typed: dict[str, list[Value]] = {}
    for field in schema.fields:
        try:
            typed[field.name] = field_values(field, metadata.get(field.name))
        except MetadataValueError as exc:
            sep = "" if str(exc).startswith("[") else ": "
            raise MetadataValueError(f"metadata.{field.name}{sep}{exc}") from None
    return typed


def metadata_problem(schema: CollectionSchema, metadata: Mapping[str, Any]) -> str | None:
    """Why a document's metadata does not fit ``schema``, or None when it does."""
    if not schema.fields:
        return None
    try:
        typed_metadata(schema, metadata)
    except MetadataValueError as exc:
        return str(exc)
    return None
