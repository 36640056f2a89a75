"""Filters over typed metadata: the request's tree, its checks, and the tree evaluators run.

A request's filter (`Filter`, built from the wire by the API layer; no checks there) is checked
twice: its shape against the request limits (`check_filter`: depth, condition count, value
counts, `should` rules) when the request is resolved, and its fields against the searched
index's schema (`bind_filter`: declared fields, value types) when it is searched. Binding
yields a `BoundFilter` whose values are normalised as `metadata.values` normalises documents'
(datetimes in microseconds, integer ranges closed), so the dense mask (`metadata.columns`) and
the tantivy query (`sparse.filter_query`) compare exactly the same things.

Semantics: a document matches a `Filter` when it matches every ``must`` condition, at least
``min_should_match`` (0 means 1) of the ``should`` conditions when there are any, and no
``must_not`` condition; an empty filter matches every document. A condition on a multi-valued
field matches when any one value does (a range: one value within every bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hybridsearch.errors import FieldViolation, InvalidArgumentError, echo
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.metadata.values import INT64_MAX, INT64_MIN, Value, datetime_micros

MAX_MATCH_VALUES = 1024
MAX_HAS_ID_IDS = 10_000


@dataclass(frozen=True, slots=True)
class Missing:
    """A oneof the caller left unset (a condition or value with no variant)."""

    problem: str


MatchValue = str | int | bool | Missing
Bound = int | float | datetime | Missing


@dataclass(frozen=True, slots=True)
class Match:
    """The field holds any of ``any``."""

    field: str
    any: tuple[MatchValue, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """The field holds a value within every given bound (None: open)."""

    field: str
    gt: Bound | None = None
    gte: Bound | None = None
    lt: Bound | None = None
    lte: Bound | None = None


@dataclass(frozen=True, slots=True)
class IsNull:
    """The field has no value."""

    field: str


@dataclass(frozen=True, slots=True)
class Exists:
    """The field has at least one value."""

    field: str


@dataclass(frozen=True, slots=True)
class HasId:
    """The document's id is one of ``ids``."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Filter:
    """A boolean combination of conditions (see the module docstring)."""

    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    min_should_match: int = 0
    must_not: tuple[Condition, ...] = ()


Condition = Filter | Match | Range | IsNull | Exists | HasId | Missing


@dataclass(frozen=True, slots=True)
class FilterLimits:
    """How large a filter may be (server settings)."""

    max_depth: int = 8  # nesting levels; a filter without nested filters is 1 deep
    max_conditions: int = 64  # conditions in all, nested ones included


# --- bound filters: what evaluators run -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueIn:
    """A declared field holds one of ``values`` (normalised)."""

    field: MetadataField
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class ValueRange:
    """A declared numeric field holds a value in the range; integer and datetime ranges are
    closed (``lo``/``hi`` inclusive, possibly ``lo > hi``: empty), float ranges say."""

    field: MetadataField
    lo: int | float | None
    hi: int | float | None
    lo_inclusive: bool = True
    hi_inclusive: bool = True

    @property
    def empty(self) -> bool:
        """Whether no value can lie in the range."""
        if self.lo is None or self.hi is None:
            return False
        if self.lo_inclusive and self.hi_inclusive:
            return self.lo > self.hi
        return self.lo >= self.hi


@dataclass(frozen=True, slots=True)
class HasValue:
    """A declared field has at least one value (``present``) or none (not ``present``)."""

    field: MetadataField
    present: bool


@dataclass(frozen=True, slots=True)
class IdIn:
    """The document's id is one of ``ids``."""

    ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class BoundFilter:
    """A checked filter; ``min_should`` is 0 exactly when ``should`` is empty."""

    must: tuple[BoundCondition, ...] = ()
    should: tuple[BoundCondition, ...] = ()
    min_should: int = 0
    must_not: tuple[BoundCondition, ...] = ()


BoundCondition = BoundFilter | ValueIn | ValueRange | HasValue | IdIn

# --- shape checks (no schema) -------------------------------------------------------------

AddViolation = Callable[[str, str], None]


def check_filter(filter_: Filter, limits: FilterLimits, add: AddViolation) -> None:
    """Report (``add(path, description)``) every shape problem of a request's filter: depth,
    condition count, value counts, `should` rules, unset variants. Paths start ``filter``."""
    count = _check_node(filter_, "filter", 1, limits, add)
    if count > limits.max_conditions:
        add("filter", f"at most {limits.max_conditions} conditions in all (got {count})")


def _check_node(
    node: Filter, path: str, depth: int, limits: FilterLimits, add: AddViolation
) -> int:
    if depth > limits.max_depth:
        add(path, f"filters nest at most {limits.max_depth} levels deep")
        return 0
    count = 0
    for name, conditions in (("must", node.must), ("should", node.should)):
        for i, condition in enumerate(conditions):
            count += _check_condition(condition, f"{path}.{name}[{i}]", depth, limits, add)
    for i, condition in enumerate(node.must_not):
        count += _check_condition(condition, f"{path}.must_not[{i}]", depth, limits, add)
    if node.min_should_match and not node.should:
        add(f"{path}.min_should_match", "needs should conditions (should is empty)")
    elif node.min_should_match > len(node.should):
        add(
            f"{path}.min_should_match",
            f"at most the number of should conditions ({len(node.should)}) "
            f"(got {node.min_should_match})",
        )
    return count


def _check_condition(
    condition: Condition, path: str, depth: int, limits: FilterLimits, add: AddViolation
) -> int:
    if isinstance(condition, Missing):
        add(path, condition.problem)
    elif isinstance(condition, Filter):
        return 1 + _check_node(condition, f"{path}.filter", depth + 1, limits, add)
    elif isinstance(condition, Match):
        _check_field_name(condition.field, f"{path}.match.field", add)
        if not 1 <= len(condition.any) <= MAX_MATCH_VALUES:
            add(
                f"{path}.match.any",
                f"must hold 1 to {MAX_MATCH_VALUES} values (got {len(condition.any)})",
            )
        else:  # over the limit, the values themselves go unchecked
            for i, value in enumerate(condition.any):
                if isinstance(value, Missing):
                    add(f"{path}.match.any[{i}]", value.problem)
    elif isinstance(condition, Range):
        _check_range(condition, f"{path}.range", add)
    elif isinstance(condition, IsNull):
        _check_field_name(condition.field, f"{path}.is_null.field", add)
    elif isinstance(condition, Exists):
        _check_field_name(condition.field, f"{path}.exists.field", add)
    elif not 1 <= len(condition.ids) <= MAX_HAS_ID_IDS:
        add(f"{path}.has_id.ids", f"must hold 1 to {MAX_HAS_ID_IDS} ids (got {len(condition.ids)})")
    return 1


def _check_field_name(name: str, path: str, add: AddViolation) -> None:
    if not name:
        add(path, "must name a declared metadata field")


def _check_range(condition: Range, path: str, add: AddViolation) -> None:
    _check_field_name(condition.field, f"{path}.field", add)
    bounds = {"gt": condition.gt, "gte": condition.gte, "lt": condition.lt, "lte": condition.lte}
    if all(b is None for b in bounds.values()):
        add(path, "set at least one of gt, gte, lt, lte")
    if condition.gt is not None and condition.gte is not None:
        add(f"{path}.gte", "set gt or gte, not both")
    if condition.lt is not None and condition.lte is not None:
        add(f"{path}.lte", "set lt or lte, not both")
    for name, bound in bounds.items():
        if isinstance(bound, Missing):
            add(f"{path}.{name}", bound.problem)
        elif isinstance(bound, float) and not math.isfinite(bound):
            add(f"{path}.{name}", f"must be a finite number (got {bound})")


# --- binding to a schema --------------------------------------------------------------------


def bind_filter(
    filter_: Filter, schema: CollectionSchema, *, field_prefix: str = ""
) -> BoundFilter:
    """The filter checked against ``schema`` (its shape already checked by `check_filter`).

    Raises:
        InvalidArgumentError: naming each condition on an undeclared field or with a value
            of another type than its field's (paths ``{field_prefix}filter.…``).
    """
    violations: list[FieldViolation] = []

    def add(path: str, description: str) -> None:
        violations.append(FieldViolation(field_prefix + path, description))

    bound = _bind_node(filter_, "filter", schema, add)
    if violations:
        raise InvalidArgumentError(violations)
    return bound


def _bind_node(node: Filter, path: str, schema: CollectionSchema, add: AddViolation) -> BoundFilter:
    def bind_all(name: str, conditions: Sequence[Condition]) -> tuple[BoundCondition, ...]:
        out = []
        for i, condition in enumerate(conditions):
            bound = _bind_condition(condition, f"{path}.{name}[{i}]", schema, add)
            if bound is not None:
                out.append(bound)
        return tuple(out)

    should = bind_all("should", node.should)
    return BoundFilter(
        must=bind_all("must", node.must),
        should=should,
        min_should=max(1, node.min_should_match) if node.should else 0,
        must_not=bind_all("must_not", node.must_not),
    )


def _declared(
    schema: CollectionSchema, name: str, path: str, add: AddViolation
) -> MetadataField | None:
    declared = schema.field(name)
    if declared is None:
        add(path, f"{echo(name)} is not a declared metadata field ({_declared_names(schema)})")
    return declared


#: Most declared field names an error lists (a schema may declare 64, of 64 characters each).
LISTED_FIELDS = 8


def _declared_names(schema: CollectionSchema) -> str:
    names = [f.name for f in schema.fields]
    if not names:
        return "declared: none"
    listed = ", ".join(names[:LISTED_FIELDS])
    more = len(names) - LISTED_FIELDS
    if more > 0:
        return f"declared: {listed} and {more} more; GetCollection lists them all"
    return f"declared: {listed}"


def _bind_condition(
    condition: Condition, path: str, schema: CollectionSchema, add: AddViolation
) -> BoundCondition | None:
    if isinstance(condition, Filter):
        return _bind_node(condition, f"{path}.filter", schema, add)
    if isinstance(condition, HasId):
        return IdIn(frozenset(condition.ids))
    if isinstance(condition, IsNull | Exists):
        kind = "is_null" if isinstance(condition, IsNull) else "exists"
        declared = _declared(schema, condition.field, f"{path}.{kind}.field", add)
        if declared is None:
            return None
        return HasValue(declared, present=isinstance(condition, Exists))
    if isinstance(condition, Match):
        return _bind_match(condition, f"{path}.match", schema, add)
    if isinstance(condition, Range):
        return _bind_range(condition, f"{path}.range", schema, add)
    return None  # Missing: reported by check_filter


_MATCH_TYPES = {
    MetadataType.KEYWORD: ("keyword", str),
    MetadataType.INTEGER: ("integer", int),
    MetadataType.BOOLEAN: ("boolean", bool),
}


def _bind_match(
    condition: Match, path: str, schema: CollectionSchema, add: AddViolation
) -> ValueIn | None:
    declared = _declared(schema, condition.field, f"{path}.field", add)
    if declared is None:
        return None
    expected = _MATCH_TYPES.get(declared.type)
    if expected is None:
        add(
            f"{path}.field",
            f"match works on keyword, integer and boolean fields; {declared.name!r} is "
            f"{declared.type.value} (use range)",
        )
        return None
    name, python_type = expected
    values: list[Value] = []
    for i, value in enumerate(condition.any):
        # bool is an int in Python: compare exact types.
        if type(value) is not python_type:
            add(
                f"{path}.any[{i}]",
                f"{declared.name!r} is {_typed(declared.type)} field: give {_article(name)} "
                f"{name} value",
            )
        else:
            assert not isinstance(value, Missing)
            values.append(value)
    return ValueIn(declared, tuple(dict.fromkeys(values)))


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _typed(kind: MetadataType) -> str:
    return f"{_article(kind.value)} {kind.value}"


def _bind_range(
    condition: Range, path: str, schema: CollectionSchema, add: AddViolation
) -> ValueRange | None:
    declared = _declared(schema, condition.field, f"{path}.field", add)
    if declared is None:
        return None
    kind = declared.type
    if kind not in (MetadataType.INTEGER, MetadataType.FLOAT, MetadataType.DATETIME):
        add(
            f"{path}.field",
            f"range works on integer, float and datetime fields; {declared.name!r} is "
            f"{kind.value} (use match)",
        )
        return None
    ok = True
    for name in ("gt", "gte", "lt", "lte"):
        bound = getattr(condition, name)
        if bound is None:
            continue
        fits = (
            isinstance(bound, datetime)
            if kind is MetadataType.DATETIME
            else isinstance(bound, int | float) and not isinstance(bound, bool)
        )
        if not fits:
            wanted = "a datetime" if kind is MetadataType.DATETIME else "an integer or a number"
            add(
                f"{path}.{name}",
                f"{declared.name!r} is {_typed(kind)} field: give {wanted}",
            )
            ok = False
    if not ok:
        return None
    if kind is MetadataType.FLOAT:
        lower = condition.gt if condition.gt is not None else condition.gte
        upper = condition.lt if condition.lt is not None else condition.lte
        return ValueRange(
            declared,
            None if lower is None else float(lower) + 0.0,  # type: ignore[arg-type]
            None if upper is None else float(upper) + 0.0,  # type: ignore[arg-type]
            lo_inclusive=condition.gt is None,
            hi_inclusive=condition.lt is None,
        )
    lo, hi = _closed_integer_bounds(condition, kind)
    return ValueRange(declared, lo, hi)


def _closed_integer_bounds(condition: Range, kind: MetadataType) -> tuple[int | None, int | None]:
    """Closed integer bounds equivalent to the condition's (datetimes in microseconds), open
    where a bound lies beyond the 64-bit range; ``lo > hi`` when nothing can match."""

    def number(bound: Bound) -> int | float:
        if isinstance(bound, datetime):
            return datetime_micros(bound)
        assert not isinstance(bound, Missing)
        return bound

    lo: int | None = None
    hi: int | None = None
    if condition.gt is not None:
        lo = math.floor(number(condition.gt)) + 1
    elif condition.gte is not None:
        lo = math.ceil(number(condition.gte))
    if condition.lt is not None:
        hi = math.ceil(number(condition.lt)) - 1
    elif condition.lte is not None:
        hi = math.floor(number(condition.lte))
    del kind
    if (lo is not None and lo > INT64_MAX) or (hi is not None and hi < INT64_MIN):
        return 1, 0  # empty
    if lo is not None and lo <= INT64_MIN:
        lo = None
    if hi is not None and hi >= INT64_MAX:
        hi = None
    return lo, hi


def walk_fields(node: BoundFilter) -> set[str]:
    """Names of the declared fields a bound filter reads."""
    names: set[str] = set()
    for condition in (*node.must, *node.should, *node.must_not):
        if isinstance(condition, BoundFilter):
            names |= walk_fields(condition)
        elif not isinstance(condition, IdIn):
            names.add(condition.field.name)
    return names
