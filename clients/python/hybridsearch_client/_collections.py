"""CollectionService requests: schema fields, dense index kinds and alias actions as small
typed values, next to the generated messages they become."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from hybridsearch_client._gen.hybridsearch.v1 import collection_pb2

FieldType = Literal["keyword", "integer", "float", "boolean", "datetime"]
"""A metadata field type by name (``collection_pb.METADATA_TYPE_*`` values work too)."""

DenseIndex = Literal["exact", "hnsw"]
"""How a collection searches its vectors (``collection_pb.DENSE_INDEX_KIND_*`` values work
too): ``exact`` (exhaustive inner product) or ``hnsw`` (approximate graph)."""

_FIELD_TYPES: dict[str, collection_pb2.MetadataType.ValueType] = {
    "keyword": collection_pb2.METADATA_TYPE_KEYWORD,
    "integer": collection_pb2.METADATA_TYPE_INTEGER,
    "float": collection_pb2.METADATA_TYPE_FLOAT,
    "boolean": collection_pb2.METADATA_TYPE_BOOLEAN,
    "datetime": collection_pb2.METADATA_TYPE_DATETIME,
}
_DENSE_INDEX: dict[str, collection_pb2.DenseIndexKind.ValueType] = {
    "exact": collection_pb2.DENSE_INDEX_KIND_EXACT,
    "hnsw": collection_pb2.DENSE_INDEX_KIND_HNSW,
}


@dataclass(frozen=True, slots=True)
class SchemaField:
    """One filterable metadata field of a collection: its key in the documents' ``metadata``,
    its type and whether it holds a list of values.

    >>> SchemaField("topics", "keyword", multi_valued=True)
    """

    name: str
    type: FieldType | collection_pb2.MetadataType.ValueType
    multi_valued: bool = False

    def to_proto(self) -> collection_pb2.MetadataField:
        return collection_pb2.MetadataField(
            name=self.name, type=_field_type(self.type), multi_valued=self.multi_valued
        )

    @classmethod
    def from_proto(cls, message: collection_pb2.MetadataField) -> SchemaField:
        """The dataclass of a generated field (its type as a name, e.g. ``"integer"``)."""
        names = {value: name for name, value in _FIELD_TYPES.items()}
        kind: FieldType | collection_pb2.MetadataType.ValueType = names.get(  # type: ignore[assignment]
            message.type, message.type
        )
        return cls(message.name, kind, message.multi_valued)


def _field_type(value: str | int) -> collection_pb2.MetadataType.ValueType:
    if isinstance(value, str):
        try:
            return _FIELD_TYPES[value]
        except KeyError:
            raise ValueError(
                f"unknown metadata field type {value!r} (one of {', '.join(_FIELD_TYPES)})"
            ) from None
    return collection_pb2.MetadataType.ValueType(value)


def _dense_index(value: str | int | None) -> collection_pb2.DenseIndexKind.ValueType:
    if value is None:
        return collection_pb2.DENSE_INDEX_KIND_UNSPECIFIED
    if isinstance(value, str):
        try:
            return _DENSE_INDEX[value]
        except KeyError:
            raise ValueError(
                f"unknown dense index kind {value!r} (one of {', '.join(_DENSE_INDEX)})"
            ) from None
    return collection_pb2.DenseIndexKind.ValueType(value)


SchemaLike = (
    Iterable[SchemaField | collection_pb2.MetadataField] | collection_pb2.CollectionSchema | None
)
"""A collection's schema: :class:`SchemaField` values (or generated ``MetadataField``
messages), a ready ``CollectionSchema``, or None for no filterable fields."""


def build_create_request(
    name: str,
    schema: SchemaLike = None,
    model: str | None = None,
    dense_index: DenseIndex | collection_pb2.DenseIndexKind.ValueType | None = None,
    shards: int | None = None,
) -> collection_pb2.CreateCollectionRequest:
    """A ``CreateCollectionRequest``; ``model`` None (or empty) makes a BM25-only collection,
    ``shards`` None (or 0) a collection in one index directory."""
    if isinstance(schema, collection_pb2.CollectionSchema):
        schema_message = schema
    else:
        fields = [
            f if isinstance(f, collection_pb2.MetadataField) else f.to_proto()
            for f in (schema or ())
        ]
        schema_message = collection_pb2.CollectionSchema(fields=fields)
    return collection_pb2.CreateCollectionRequest(
        name=name,
        schema=schema_message,
        model=model or "",
        dense_index=_dense_index(dense_index),
        shards=shards or 0,
    )


@dataclass(frozen=True, slots=True)
class AddAlias:
    """Point ``alias`` at ``collection`` (a collection's own name), creating or moving it."""

    alias: str
    collection: str


@dataclass(frozen=True, slots=True)
class RemoveAlias:
    """Delete ``alias`` (``NOT_FOUND`` when it does not exist)."""

    alias: str


AliasActionLike = AddAlias | RemoveAlias | collection_pb2.AliasAction
"""One step of :meth:`~hybridsearch_client.HybridSearchClient.update_aliases`."""


def build_update_aliases_request(
    actions: Iterable[AliasActionLike],
) -> collection_pb2.UpdateAliasesRequest:
    messages: list[collection_pb2.AliasAction] = []
    for action in actions:
        if isinstance(action, collection_pb2.AliasAction):
            messages.append(action)
        elif isinstance(action, AddAlias):
            messages.append(
                collection_pb2.AliasAction(
                    add=collection_pb2.AddAlias(alias=action.alias, collection=action.collection)
                )
            )
        elif isinstance(action, RemoveAlias):
            messages.append(
                collection_pb2.AliasAction(remove=collection_pb2.RemoveAlias(alias=action.alias))
            )
        else:
            raise TypeError(
                f"expected AddAlias, RemoveAlias or AliasAction, got {type(action).__name__}"
            )
    return collection_pb2.UpdateAliasesRequest(actions=messages)
