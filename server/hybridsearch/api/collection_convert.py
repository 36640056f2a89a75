"""CollectionService messages ↔ domain types (schemas, alias actions, descriptions)."""

from __future__ import annotations

import contextlib
from datetime import datetime

from google.protobuf import timestamp_pb2

from hybridsearch.engine.registry import AddAlias, AliasAction, CollectionDescription, RemoveAlias
from hybridsearch.errors import InvalidArgumentError, SchemaError
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.v1 import collection_pb2 as pb

TYPE_FROM_PROTO = {
    pb.METADATA_TYPE_KEYWORD: MetadataType.KEYWORD,
    pb.METADATA_TYPE_INTEGER: MetadataType.INTEGER,
    pb.METADATA_TYPE_FLOAT: MetadataType.FLOAT,
    pb.METADATA_TYPE_BOOLEAN: MetadataType.BOOLEAN,
    pb.METADATA_TYPE_DATETIME: MetadataType.DATETIME,
}
TYPE_TO_PROTO = {kind: value for value, kind in TYPE_FROM_PROTO.items()}
DENSE_FROM_PROTO = {
    pb.DENSE_INDEX_KIND_UNSPECIFIED: "exact",
    pb.DENSE_INDEX_KIND_EXACT: "exact",
    pb.DENSE_INDEX_KIND_HNSW: "hnsw",
}
DENSE_TO_PROTO = {"exact": pb.DENSE_INDEX_KIND_EXACT, "hnsw": pb.DENSE_INDEX_KIND_HNSW}


def schema_from_proto(message: pb.CollectionSchema, field_path: str = "schema") -> CollectionSchema:
    """The domain schema of a request; INVALID_ARGUMENT names the bad field's path."""
    fields = []
    for i, item in enumerate(message.fields):
        kind = TYPE_FROM_PROTO.get(item.type)
        if kind is None:
            names = ", ".join(pb.MetadataType.Name(v) for v in TYPE_FROM_PROTO)
            raise InvalidArgumentError.single(
                f"{field_path}.fields[{i}].type", f"must be one of {names}"
            )
        fields.append(MetadataField(item.name, kind, item.multi_valued))
    try:
        return CollectionSchema(tuple(fields))
    except SchemaError as exc:  # "fields[1].name: ..." or a whole-schema problem
        where, _, problem = str(exc).partition(": ")
        if where.startswith("fields[") and problem:
            raise InvalidArgumentError.single(f"{field_path}.{where}", problem) from None
        raise InvalidArgumentError.single(f"{field_path}.fields", str(exc)) from None


def schema_to_proto(schema: CollectionSchema, message: pb.CollectionSchema) -> None:
    """Fill ``message`` with ``schema``'s fields."""
    for declared in schema.fields:
        message.fields.add(
            name=declared.name,
            type=TYPE_TO_PROTO[declared.type],
            multi_valued=declared.multi_valued,
        )


def description_to_proto(description: CollectionDescription) -> pb.CollectionInfo:
    """A collection's `CollectionInfo`."""
    info = pb.CollectionInfo(
        name=description.name,
        document_count=description.document_count,
        size_bytes=description.size_bytes,
        encoder_model_id=description.encoder_model_id,
        dense_index=DENSE_TO_PROTO.get(description.dense_index, pb.DENSE_INDEX_KIND_UNSPECIFIED),
        generation=description.generation,
        aliases=description.aliases,
        default=description.default,
        shard_count=description.shard_count,
        missing_shards=description.missing_shards,
    )
    schema_to_proto(description.schema, info.schema)
    if description.created:
        info.created_time.CopyFrom(_timestamp(description.created))
    return info


def _timestamp(iso: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    with contextlib.suppress(ValueError):  # not a time: left unset, the description stands
        stamp.FromDatetime(datetime.fromisoformat(iso))
    return stamp


def alias_actions_from_proto(request: pb.UpdateAliasesRequest) -> list[AliasAction]:
    """The domain actions of an UpdateAliases request; an empty action is INVALID_ARGUMENT."""
    actions: list[AliasAction] = []
    for i, action in enumerate(request.actions):
        kind = action.WhichOneof("action")
        if kind == "add":
            actions.append(AddAlias(action.add.alias, action.add.collection))
        elif kind == "remove":
            actions.append(RemoveAlias(action.remove.alias))
        else:
            raise InvalidArgumentError.single(f"actions[{i}]", "must set add or remove")
    return actions
