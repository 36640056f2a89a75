"""Metadata in tantivy: the fields a collection schema declares, and filters compiled to
queries over them.

Declared field ``i`` of the schema is the tantivy field ``meta_<i>`` (names stay valid
whatever characters a metadata field name has): keyword → text with the ``raw`` tokenizer;
integer and datetime (microseconds since the epoch) → i64; float → f64; boolean → bool; all
indexed and fast, a multi-valued field holding each value. A compiled filter matches exactly
the documents `metadata.columns.MetadataColumns.mask` matches (the property tests check it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tantivy

from hybridsearch.metadata.filter import BoundCondition, BoundFilter, HasValue, IdIn, ValueIn
from hybridsearch.metadata.schema import CollectionSchema, MetadataType
from hybridsearch.metadata.values import Value

_OCCUR_MUST = tantivy.Occur.Must
_OCCUR_SHOULD = tantivy.Occur.Should
_OCCUR_MUST_NOT = tantivy.Occur.MustNot


def tantivy_field_names(schema: CollectionSchema) -> dict[str, str]:
    """The tantivy field of each declared metadata field."""
    return {field.name: f"meta_{i}" for i, field in enumerate(schema.fields)}


def add_metadata_fields(builder: tantivy.SchemaBuilder, schema: CollectionSchema) -> None:
    """Declare the schema's metadata fields on a tantivy schema under construction."""
    names = tantivy_field_names(schema)
    for field in schema.fields:
        name = names[field.name]
        kind = field.type
        if kind is MetadataType.KEYWORD:
            builder.add_text_field(
                name, stored=False, fast=True, tokenizer_name="raw", index_option="basic"
            )
        elif kind is MetadataType.FLOAT:
            builder.add_float_field(name, stored=False, indexed=True, fast=True)
        elif kind is MetadataType.BOOLEAN:
            builder.add_boolean_field(name, stored=False, indexed=True, fast=True)
        else:  # integer, datetime (microseconds)
            builder.add_integer_field(name, stored=False, indexed=True, fast=True)


def add_metadata_values(
    tdoc: tantivy.Document, schema: CollectionSchema, typed: Mapping[str, list[Value]]
) -> None:
    """Add a document's normalised declared values (`metadata.values.typed_metadata`)."""
    names = tantivy_field_names(schema)
    for field in schema.fields:
        name = names[field.name]
        for value in typed.get(field.name, ()):
            kind = field.type
            # normalised values have their field's Python type (metadata.values)
            if kind is MetadataType.KEYWORD:
                tdoc.add_text(name, str(value))
            elif kind is MetadataType.FLOAT:
                tdoc.add_float(name, float(value))
            elif kind is MetadataType.BOOLEAN:
                tdoc.add_boolean(name, bool(value))
            else:
                tdoc.add_integer(name, int(value))


class FilterCompiler:
    """Compiles bound filters into tantivy queries for one index's schema."""

    def __init__(self, tantivy_schema: tantivy.Schema, schema: CollectionSchema) -> None:
        self._tschema = tantivy_schema
        self._names = tantivy_field_names(schema)
        self._id_field = "id"

    def compile(self, node: BoundFilter) -> tantivy.Query:
        """A query matching exactly the documents ``node`` matches (it scores nothing useful:
        wrap it in ``const_score_query`` to add it to a scored query)."""
        clauses: list[tuple[Any, tantivy.Query]] = []
        clauses += [(_OCCUR_MUST, self._condition(c)) for c in node.must]
        clauses += [(_OCCUR_SHOULD, self._condition(c)) for c in node.should]
        clauses += [(_OCCUR_MUST_NOT, self._condition(c)) for c in node.must_not]
        if not node.must and not node.should:
            # A boolean query of exclusions alone matches nothing: exclude from everything.
            clauses.append((_OCCUR_MUST, tantivy.Query.all_query()))
        if not node.should:
            return tantivy.Query.boolean_query(clauses)
        return tantivy.Query.boolean_query(clauses, minimum_number_should_match=node.min_should)

    def _condition(self, condition: BoundCondition) -> tantivy.Query:
        query = tantivy.Query
        if isinstance(condition, BoundFilter):
            return self.compile(condition)
        if isinstance(condition, IdIn):
            return query.term_set_query(self._tschema, self._id_field, sorted(condition.ids))
        name = self._names[condition.field.name]
        if isinstance(condition, HasValue):
            exists = query.exists_query(name)
            if condition.present:
                return exists
            return query.boolean_query(
                [(_OCCUR_MUST, query.all_query()), (_OCCUR_MUST_NOT, exists)]
            )
        if isinstance(condition, ValueIn):
            if not condition.values:
                return query.empty_query()
            return query.term_set_query(self._tschema, name, list(condition.values))
        if condition.empty:
            return query.empty_query()
        if condition.lo is None and condition.hi is None:
            return query.exists_query(name)  # bounds beyond the 64-bit range: any value
        field_type = (
            tantivy.FieldType.Float
            if condition.field.type is MetadataType.FLOAT
            else tantivy.FieldType.Integer
        )
        return query.range_query(
            self._tschema,
            name,
            field_type,
            condition.lo,
            condition.hi,
            include_lower=condition.lo_inclusive or condition.lo is None,
            include_upper=condition.hi_inclusive or condition.hi is None,
        )


def filtered(scored: tantivy.Query, filter_query: tantivy.Query) -> tantivy.Query:
    """``scored`` restricted to the documents ``filter_query`` matches, scores unchanged."""
    return tantivy.Query.boolean_query(
        [
            (_OCCUR_MUST, scored),
            (_OCCUR_MUST, tantivy.Query.const_score_query(filter_query, 0.0)),
        ]
    )
