"""Against a live server with collections (``serve --data-dir``, as scripts/clients_test.sh
runs it): ``create_collection(shards=N)`` makes a sharded collection, which the sync and the
async client both fill and search like any other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import grpc
import pytest

from hybridsearch_client import (
    AsyncHybridSearchClient,
    Document,
    HybridSearchClient,
    HybridSearchError,
    pb,
)

DOCS = [
    Document("s1", title="Solar wind", text="plasma physics of the solar wind"),
    Document("s2", title="Solar panels", text="solar cells on roofs"),
    Document("s3", title="Lunar tides", text="the moon pulls the oceans"),
    Document("s4", title="Solar eclipse", text="the solar eclipse of 1999"),
]
SOLAR = ["s1", "s2", "s4"]


@pytest.fixture
def collection_name(client: HybridSearchClient) -> Iterator[str]:
    """A unique collection name; the collection, if made, is deleted after."""
    name = f"py-shards-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        client.delete_collection(name)
    except HybridSearchError as error:
        if error.code is not grpc.StatusCode.NOT_FOUND:
            raise


def test_create_collection_with_shards(client: HybridSearchClient, collection_name: str) -> None:
    created = client.create_collection(collection_name, shards=2)  # BM25-only
    assert (created.name, created.shard_count, created.document_count) == (collection_name, 2, 0)
    assert client.get_collection(collection_name).shard_count == 2

    upserted = client.upsert_documents(DOCS, collection=collection_name)
    assert (upserted.accepted_count, upserted.rejected_count) == (4, 0), upserted
    found = client.search(
        "solar", collection=collection_name, mode=pb.RETRIEVAL_MODE_SPARSE, top_k=10
    )
    assert sorted(h.id for h in found.hits) == SOLAR
    assert client.get_collection(collection_name).document_count == 4


def test_create_collection_without_shards_is_one_directory(
    client: HybridSearchClient, collection_name: str
) -> None:
    assert client.create_collection(collection_name).shard_count == 0


def test_async_create_collection_with_shards(addr: str, collection_name: str) -> None:
    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0) as client:
            created = await client.create_collection(collection_name, shards=2)
            assert created.shard_count == 2
            upserted = await client.upsert_documents(DOCS, collection=collection_name)
            assert upserted.accepted_count == 4, upserted
            found = await client.search(
                "solar", collection=collection_name, mode=pb.RETRIEVAL_MODE_SPARSE, top_k=10
            )
            assert sorted(h.id for h in found.hits) == SOLAR

    asyncio.run(scenario())
