"""The one conversion of a Python ``datetime`` into the server's datetime: a filter bound
travels as a ``Timestamp``, a metadata value as that ``Timestamp``'s RFC 3339 text (UTC, ``Z``,
0, 3, 6 or 9 fraction digits: ``2020-01-31T12:00:00Z``)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2


def instant_timestamp(value: dt.datetime, what: str) -> timestamp_pb2.Timestamp:
    """The ``Timestamp`` of a time-zone-aware ``value``; ``ValueError`` naming ``what`` for a
    naive one (its zone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what}: the datetime has no time zone, so it is not an instant "
            "(give it a tzinfo, e.g. datetime.UTC)"
        )
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(dt.UTC))
    return stamp


def instant_rfc3339(value: dt.datetime, what: str) -> str:
    """``value`` (time-zone-aware) as RFC 3339 text in UTC, e.g. ``2020-01-31T12:00:00Z``."""
    return instant_timestamp(value, what).ToJsonString()
