"""CollectionService requests and the `collection` of index requests, without a server."""

from __future__ import annotations

import pytest

from hybridsearch_client import (
    AddAlias,
    Document,
    RemoveAlias,
    SchemaField,
    collection_pb,
    index_pb,
)
from hybridsearch_client._collections import build_create_request, build_update_aliases_request
from hybridsearch_client._documents import UpsertBatcher


def test_create_request() -> None:
    request = build_create_request(
        "papers",
        [SchemaField("year", "integer"), SchemaField("tags", "keyword", multi_valued=True)],
        model="default",
        dense_index="hnsw",
        shards=3,
    )
    assert request == collection_pb.CreateCollectionRequest(
        name="papers",
        schema=collection_pb.CollectionSchema(
            fields=[
                collection_pb.MetadataField(name="year", type=collection_pb.METADATA_TYPE_INTEGER),
                collection_pb.MetadataField(
                    name="tags", type=collection_pb.METADATA_TYPE_KEYWORD, multi_valued=True
                ),
            ]
        ),
        model="default",
        dense_index=collection_pb.DENSE_INDEX_KIND_HNSW,
        shards=3,
    )
    bm25 = build_create_request("b", None, None, None)
    assert (bm25.model, bm25.dense_index, len(bm25.schema.fields), bm25.shards) == ("", 0, 0, 0)


def test_schema_field_round_trip_and_enums() -> None:
    field = SchemaField("published", collection_pb.METADATA_TYPE_DATETIME)
    assert SchemaField.from_proto(field.to_proto()) == SchemaField("published", "datetime")
    with pytest.raises(ValueError, match="unknown metadata field type"):
        SchemaField("x", "text").to_proto()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dense index kind"):
        build_create_request("x", dense_index="ivf")  # type: ignore[arg-type]


def test_alias_actions_keep_their_order() -> None:
    raw = collection_pb.AliasAction(remove=collection_pb.RemoveAlias(alias="c"))
    request = build_update_aliases_request([AddAlias("a", "x"), RemoveAlias("b"), raw])
    assert [a.WhichOneof("action") for a in request.actions] == ["add", "remove", "remove"]
    assert (request.actions[0].add.alias, request.actions[0].add.collection) == ("a", "x")
    assert request.actions[2] == raw
    with pytest.raises(TypeError):
        build_update_aliases_request([("a", "x")])  # type: ignore[list-item]


def test_upsert_batches_name_the_collection() -> None:
    batcher = UpsertBatcher(batch_size=2, collection="live")
    ready = index_pb.UpsertDocumentsRequest(documents=[index_pb.Document(id="r")])
    requests = [
        *batcher.add(Document("a")),
        *batcher.add(Document("b")),
        *batcher.add(ready),
        *batcher.flush(),
    ]
    assert [r.collection for r in requests] == ["live", "live"]
    assert ready.collection == ""  # the caller's message is not changed
