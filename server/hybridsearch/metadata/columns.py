"""`MetadataColumns`: the declared metadata of every ordinal, columnar, for filter masks.

Each declared field is a CSR column: ``values`` (int64 for integer and datetime fields,
float64 for float, bool for boolean, int32 dictionary codes for keyword) and ``rows`` (the
ordinal each value belongs to), so any condition is one vectorised test over ``values``
scattered onto a mask by ``rows``. A `MetadataColumns` is immutable: a commit's new rows make
a new one (`extended`), sharing nothing a published snapshot could see change, so it follows
the index's committed state exactly as the vector rows do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridsearch.metadata.filter import BoundFilter, HasValue, IdIn, ValueIn, ValueRange
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.metadata.values import Value, typed_metadata

Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class _Column:
    values: NDArray[Any]
    rows: NDArray[np.int64]
    codes: Mapping[str, int] | None = None  # keyword fields: value -> code


def _dtype(kind: MetadataType) -> Any:
    if kind is MetadataType.FLOAT:
        return np.float64
    if kind is MetadataType.BOOLEAN:
        return np.bool_
    if kind is MetadataType.KEYWORD:
        return np.int32
    return np.int64


class MetadataColumns:
    """Declared metadata of ordinals ``0 .. rows - 1`` and their ids (for ``has_id``)."""

    def __init__(
        self,
        schema: CollectionSchema,
        ids: Sequence[str],
        rows: int,
        columns: Mapping[str, _Column] | None = None,
    ) -> None:
        """An empty column per declared field unless ``columns`` are given (see `build`)."""
        self.schema = schema
        self.rows = rows
        self._ids = ids  # append-only list shared with the id map; only [:rows] is read
        self._columns: dict[str, _Column] = dict(columns or {})
        for field in schema.fields:
            if field.name not in self._columns:
                empty = np.empty(0, dtype=_dtype(field.type))
                codes: dict[str, int] | None = {} if field.type is MetadataType.KEYWORD else None
                self._columns[field.name] = _Column(empty, np.empty(0, np.int64), codes)
        self._id_ordinals: dict[str, list[int]] | None = None
        self._id_lock = threading.Lock()

    @classmethod
    def build(
        cls,
        schema: CollectionSchema,
        ids: Sequence[str],
        metadata: Iterable[tuple[int, Mapping[str, Any]]],
        rows: int,
    ) -> MetadataColumns:
        """Columns of ``rows`` ordinals from ``(ordinal, metadata)`` pairs (others: no values).

        Metadata that does not fit the schema raises `MetadataValueError` (it was checked
        before it was committed).
        """
        return cls(schema, ids, 0).extended(metadata, rows)

    def extended(
        self, metadata: Iterable[tuple[int, Mapping[str, Any]]], rows: int
    ) -> MetadataColumns:
        """A new `MetadataColumns` of ``rows`` ordinals: these plus the given new ones."""
        new_values: dict[str, list[Value]] = {f.name: [] for f in self.schema.fields}
        new_rows: dict[str, list[int]] = {f.name: [] for f in self.schema.fields}
        if self.schema.fields:
            for ordinal, meta in metadata:
                if not self.rows <= ordinal < rows:
                    raise ValueError(f"ordinal {ordinal} outside the new rows")
                for name, values in typed_metadata(self.schema, meta).items():
                    new_values[name].extend(values)
                    new_rows[name].extend([ordinal] * len(values))
        columns = {}
        for field in self.schema.fields:
            old = self._columns[field.name]
            columns[field.name] = _append(field, old, new_values[field.name], new_rows[field.name])
        return MetadataColumns(self.schema, self._ids, rows, columns)

    def mask(self, filter_: BoundFilter) -> Mask:
        """Which ordinals match ``filter_`` (dead ordinals included: combine with live)."""
        return self._node(filter_)

    def _node(self, node: BoundFilter) -> Mask:
        result = np.ones(self.rows, dtype=np.bool_)
        for condition in node.must:
            result &= self._condition(condition)
        if node.should:
            hits = np.zeros(self.rows, dtype=np.int32)
            for condition in node.should:
                hits += self._condition(condition)
            result &= hits >= node.min_should
        for condition in node.must_not:
            result &= ~self._condition(condition)
        return result

    def _condition(self, condition: BoundFilter | ValueIn | ValueRange | HasValue | IdIn) -> Mask:
        if isinstance(condition, BoundFilter):
            return self._node(condition)
        if isinstance(condition, IdIn):
            return self._ids_mask(condition.ids)
        column = self._columns[condition.field.name]
        if isinstance(condition, HasValue):
            mask = np.zeros(self.rows, dtype=np.bool_)
            mask[column.rows] = True
            return mask if condition.present else ~mask
        if isinstance(condition, ValueIn):
            if column.codes is not None:
                wanted = [column.codes[str(v)] for v in condition.values if str(v) in column.codes]
                hit = np.isin(column.values, np.asarray(wanted, dtype=np.int32))
            else:
                hit = np.isin(
                    column.values, np.asarray(condition.values, dtype=column.values.dtype)
                )
        else:
            hit = _in_range(column.values, condition)
        mask = np.zeros(self.rows, dtype=np.bool_)
        mask[column.rows[hit]] = True
        return mask

    def _ids_mask(self, ids: frozenset[str]) -> Mask:
        with self._id_lock:
            if self._id_ordinals is None:
                # Built once per snapshot, on its first has_id condition.
                by_id: dict[str, list[int]] = {}
                for ordinal in range(self.rows):
                    by_id.setdefault(self._ids[ordinal], []).append(ordinal)
                self._id_ordinals = by_id
            by_id = self._id_ordinals
        mask = np.zeros(self.rows, dtype=np.bool_)
        for doc_id in ids:
            ordinals = by_id.get(doc_id)
            if ordinals:
                mask[ordinals] = True
        return mask


def _in_range(values: NDArray[Any], condition: ValueRange) -> NDArray[np.bool_]:
    hit = np.ones(len(values), dtype=np.bool_)
    if condition.empty:
        return ~hit
    if condition.lo is not None:
        hit &= values >= condition.lo if condition.lo_inclusive else values > condition.lo
    if condition.hi is not None:
        hit &= values <= condition.hi if condition.hi_inclusive else values < condition.hi
    return hit


def _append(field: MetadataField, old: _Column, values: list[Value], rows: list[int]) -> _Column:
    codes = old.codes
    if codes is not None:
        codes = dict(codes)  # a copy: an older snapshot's dictionary never changes
        encoded = [codes.setdefault(str(v), len(codes)) for v in values]
        array = np.asarray(encoded, dtype=np.int32)
    else:
        array = np.asarray(values, dtype=_dtype(field.type))
    return _Column(
        np.concatenate([old.values, array]),
        np.concatenate([old.rows, np.asarray(rows, dtype=np.int64)]),
        codes,
    )
