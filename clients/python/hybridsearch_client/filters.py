"""A typed builder for ``hybridsearch.v1.Filter``: metadata conditions combined with ``&``
(all of), ``|`` (any of) and ``~`` (not).

>>> from hybridsearch_client import filters as f
>>> flt = f.match("journal", "nature", "cell") & f.range("year", gte=2015) & ~f.exists("erratum")
>>> client.search("cancer treatment", collection="papers", filter=flt)

Every helper returns a :class:`Condition`; :meth:`Condition.to_filter` gives the ``Filter``
message (the client calls it for you). Field names and value types are checked by the server
against the collection's schema: an undeclared field or a value of another type is
``INVALID_ARGUMENT`` naming the field path (``filter.must[1].range.gte``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from hybridsearch_client._gen.hybridsearch.v1 import filter_pb2
from hybridsearch_client._instants import instant_timestamp

MatchValue = str | int | bool
"""A value to match: a ``str`` for a keyword field, an ``int`` for an integer field, a ``bool``
for a boolean field."""

Bound = int | float | dt.datetime
"""A range bound: an ``int`` (integer field), a ``float`` (float field; an integer field accepts
it too) or a time-zone-aware ``datetime`` (datetime field)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of a document (a ``hybridsearch.v1.Condition``), combinable with ``&``, ``|``
    and ``~``. ``a & b & c`` is one ``must`` list, ``a | b | c`` one ``should`` list (at least
    one must match), ``~a`` a ``must_not``; use :func:`any_of` for ``min_should_match``."""

    proto: filter_pb2.Condition

    def __and__(self, other: Condition) -> Condition:
        must: list[filter_pb2.Condition] = []
        must_not: list[filter_pb2.Condition] = []
        for operand in (self, other):
            conjunction = operand._conjunction()
            if conjunction is None:
                must.append(operand.proto)
            else:
                must.extend(conjunction.must)
                must_not.extend(conjunction.must_not)
        return where(must=must, must_not=must_not)

    def __or__(self, other: Condition) -> Condition:
        should: list[filter_pb2.Condition] = []
        for operand in (self, other):
            disjunction = operand._disjunction()
            should.extend([operand.proto] if disjunction is None else disjunction.should)
        return any_of(*should)

    def __invert__(self) -> Condition:
        return none_of(self)

    def _nested(self) -> filter_pb2.Filter | None:
        return self.proto.filter if self.proto.WhichOneof("condition") == "filter" else None

    def _conjunction(self) -> filter_pb2.Filter | None:
        """This nested filter when it has only ``must``/``must_not`` lists, so ``a & b & ~c``
        is one flat filter (``must=[a, b], must_not=[c]``) rather than nested pairs."""
        nested = self._nested()
        return nested if nested is not None and not nested.should else None

    def _disjunction(self) -> filter_pb2.Filter | None:
        """This nested filter when it is a plain ``should`` list (minimum 1), so ``a | b | c``
        is one flat ``should`` list."""
        nested = self._nested()
        if nested is None or nested.must or nested.must_not or not nested.should:
            return None
        return nested if nested.min_should_match <= 1 else None

    def to_filter(self) -> filter_pb2.Filter:
        """The ``Filter`` message: a nested filter as is, any other test as its one ``must``."""
        if self.proto.WhichOneof("condition") == "filter":
            return _copy_filter(self.proto.filter)
        return filter_pb2.Filter(must=[self.proto])


FilterLike = Condition | filter_pb2.Filter
"""What the client's ``filter=`` accepts: a built :class:`Condition` or a raw ``Filter``."""


def to_filter_proto(value: FilterLike) -> filter_pb2.Filter:
    """The ``Filter`` message for a built condition; a raw ``Filter`` passes through."""
    if isinstance(value, filter_pb2.Filter):
        return value
    if isinstance(value, Condition):
        return value.to_filter()
    raise TypeError(
        f"expected a filters.Condition or hybridsearch.v1.Filter, got {type(value).__name__}"
    )


def _copy_filter(message: filter_pb2.Filter) -> filter_pb2.Filter:
    copy = filter_pb2.Filter()
    copy.CopyFrom(message)
    return copy


def _conditions(
    conditions: Iterable[Condition | filter_pb2.Condition],
) -> list[filter_pb2.Condition]:
    result: list[filter_pb2.Condition] = []
    for cond in conditions:
        if isinstance(cond, Condition):
            result.append(cond.proto)
        elif isinstance(cond, filter_pb2.Condition):
            result.append(cond)
        else:
            raise TypeError(f"expected a filters.Condition, got {type(cond).__name__}")
    return result


def where(
    *,
    must: Iterable[Condition | filter_pb2.Condition] = (),
    should: Iterable[Condition | filter_pb2.Condition] = (),
    min_should_match: int = 0,
    must_not: Iterable[Condition | filter_pb2.Condition] = (),
) -> Condition:
    """A nested boolean filter with all three lists: every ``must``, at least
    ``min_should_match`` (0 means 1) of ``should`` when there are any, and no ``must_not``."""
    if min_should_match < 0:
        raise ValueError(f"min_should_match must be >= 0 (got {min_should_match})")
    return Condition(
        filter_pb2.Condition(
            filter=filter_pb2.Filter(
                must=_conditions(must),
                should=_conditions(should),
                min_should_match=min_should_match,
                must_not=_conditions(must_not),
            )
        )
    )


def all_of(*conditions: Condition | filter_pb2.Condition) -> Condition:
    """Every condition matches (``must``)."""
    return where(must=conditions)


def any_of(*conditions: Condition | filter_pb2.Condition, min_should_match: int = 0) -> Condition:
    """At least ``min_should_match`` (0 means 1) of the conditions match (``should``)."""
    return where(should=conditions, min_should_match=min_should_match)


def none_of(*conditions: Condition | filter_pb2.Condition) -> Condition:
    """No condition matches (``must_not``)."""
    return where(must_not=conditions)


def _match_value(value: MatchValue) -> filter_pb2.MatchValue:
    # bool first: it is an int subclass.
    if isinstance(value, bool):
        return filter_pb2.MatchValue(boolean=value)
    if isinstance(value, int):
        return filter_pb2.MatchValue(integer=value)
    if isinstance(value, str):
        return filter_pb2.MatchValue(keyword=value)
    raise TypeError(f"match values are str, int or bool, got {type(value).__name__}")


def match(field: str, *values: MatchValue) -> Condition:
    """``field`` holds any of ``values`` (keyword, integer or boolean field; a multi-valued
    field matches when any of its values is one of them). Keywords match exactly."""
    if not values:
        raise ValueError("match needs at least one value")
    return Condition(
        filter_pb2.Condition(
            match=filter_pb2.Match(field=field, any=[_match_value(v) for v in values])
        )
    )


def _bound(name: str, value: Bound | None) -> filter_pb2.RangeBound | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"range bound {name}: a bool is not a bound")
    if isinstance(value, int):
        return filter_pb2.RangeBound(integer=value)
    if isinstance(value, float):
        return filter_pb2.RangeBound(number=value)
    if isinstance(value, dt.datetime):
        return filter_pb2.RangeBound(datetime=instant_timestamp(value, f"range bound {name}"))
    raise TypeError(f"range bound {name}: expected int, float or datetime, got {type(value)}")


# Named after the proto's `Range`; use it qualified (`filters.range`) to keep the builtin.
def range(
    field: str,
    *,
    gt: Bound | None = None,
    gte: Bound | None = None,
    lt: Bound | None = None,
    lte: Bound | None = None,
) -> Condition:
    """``field`` lies in the range (integer, float or datetime field); unset bounds are open,
    at least one is needed. A multi-valued field matches when any value lies in it."""
    if gt is None and gte is None and lt is None and lte is None:
        raise ValueError("range needs at least one of gt, gte, lt, lte")
    return Condition(
        filter_pb2.Condition(
            range=filter_pb2.Range(
                field=field,
                gt=_bound("gt", gt),
                gte=_bound("gte", gte),
                lt=_bound("lt", lt),
                lte=_bound("lte", lte),
            )
        )
    )


def is_null(field: str) -> Condition:
    """``field`` has no value (absent, null, or an empty list)."""
    return Condition(filter_pb2.Condition(is_null=filter_pb2.IsNull(field=field)))


def exists(field: str) -> Condition:
    """``field`` has at least one value."""
    return Condition(filter_pb2.Condition(exists=filter_pb2.Exists(field=field)))


def has_id(*ids: str) -> Condition:
    """The document's id is one of ``ids`` (no schema needed)."""
    if not ids:
        raise ValueError("has_id needs at least one id")
    if any(not isinstance(i, str) for i in ids):
        raise TypeError("has_id takes ids as separate str arguments: has_id(*ids)")
    return Condition(filter_pb2.Condition(has_id=filter_pb2.HasId(ids=list(ids))))
