"""One scenario for a data directory holding a plain and a sharded collection, run through
gRPC against a server with Ray (test_ray_sharded_collections) and without (in process:
test_sharded_collections): the tiny corpus imported as ``plain`` (one index directory, the
default) and as ``sharded`` (2 shards, split from the same index)."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest

from hybridsearch.engine.collection_import import import_index
from hybridsearch.sharding.layout import load_shard_manifest, shard_dir_name, shard_of
from hybridsearch.sharding.split import split_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.v1 import collection_pb2 as cpb
from hybridsearch.v1 import collection_pb2_grpc, index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import search_pb2 as pb

QUERY = "laminar boundary layer transition"
TINY_DOCS = 12
NEW = [
    ("n1", "suction keeps the laminar boundary layer attached on a swept wing"),
    ("n2", "boundary layer transition delayed by wall cooling in laminar flow"),
    ("n3", "a laminar separation bubble near the leading edge of an airfoil"),
    ("n4", "sourdough bread baked in a hot oven"),
]


def prepare(tiny_hybrid_index: Path, tmp_path: Path) -> Path:
    """A data directory with ``plain`` (the default) and ``sharded`` (2 shards) imported.

    From a copy of the session's index: a session-wide writable server may hold its lock,
    which an import takes."""
    source = tmp_path / "tiny-hybrid"
    shutil.copytree(tiny_hybrid_index, source, ignore=shutil.ignore_patterns("writer.lock"))
    sharded = tmp_path / "tiny-2"
    split_index(source, sharded, 2)
    data = tmp_path / "data"
    assert import_index(data, "plain", source).shards == 0
    assert import_index(data, "sharded", sharded).shards == 2
    assert not list(data.glob(".tmp-*"))
    return data


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()  # type: ignore[no-any-return]


class Client:
    """The three services over one channel, with the calls the scenario makes."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.collections = collection_pb2_grpc.CollectionServiceStub(channel)
        self.index = index_pb2_grpc.IndexServiceStub(channel)
        self.search = search_pb2_grpc.SearchServiceStub(channel)

    def listing(self) -> dict[str, tuple[int, int]]:
        """Collection → (shard count, documents)."""
        listed = self.collections.ListCollections(cpb.ListCollectionsRequest()).collections
        return {c.name: (c.shard_count, c.document_count) for c in listed}

    def scores(self, collection: str, query: str = QUERY) -> dict[str, float]:
        request = pb.SearchRequest(
            query=query, mode=pb.RETRIEVAL_MODE_HYBRID, collection=collection, top_k=20
        )
        response = self.search.Search(request, timeout=60)
        return {hit.id: hit.score for hit in response.hits}

    def upsert(self, collection: str, docs: list[tuple[str, str]]) -> None:
        documents = [ipb.Document(id=i, text=t) for i, t in docs]
        request = ipb.UpsertDocumentsRequest(collection=collection, documents=documents)
        response = self.index.UpsertDocuments(iter([request]), timeout=60)
        assert response.accepted_count == len(docs) and not response.rejected

    def text_of(self, collection: str, doc_id: str) -> str:
        request = ipb.GetDocumentRequest(collection=collection, id=doc_id)
        return str(self.index.GetDocument(request, timeout=30).document.text)

    def alias(self, alias: str, collection: str) -> None:
        action = cpb.AliasAction(add=cpb.AddAlias(alias=alias, collection=collection))
        self.collections.UpdateAliases(cpb.UpdateAliasesRequest(actions=[action]))


def search_both_and_write(client: Client, data: Path) -> None:
    """Listing, the same hybrid hits from both collections, an upsert routed to the owning
    shards (read back by id), an alias moved from the plain to the sharded collection."""
    assert client.listing() == {"plain": (0, TINY_DOCS), "sharded": (2, TINY_DOCS)}
    # Same corpus, exact vectors, collection-wide BM25 statistics: the same hits and scores.
    plain = client.scores("plain")
    assert client.scores("sharded") == pytest.approx(plain, abs=1e-4)
    assert next(iter(plain)) in ("d01", "d11")

    client.upsert("sharded", NEW)
    for doc_id, text in NEW:
        assert client.text_of("sharded", doc_id) == text
    assert code_of(lambda: client.text_of("plain", "n1")) == grpc.StatusCode.NOT_FOUND
    root = data / "collections" / "sharded"
    ids = [f"d{i:02d}" for i in range(1, TINY_DOCS + 1)] + [i for i, _ in NEW]
    for shard in range(2):
        on_disk = open_index(root / shard_dir_name(shard)).manifest.document_count
        assert on_disk == sum(shard_of(i, 2) == shard for i in ids), f"shard {shard}"
    assert client.listing()["sharded"] == (2, TINY_DOCS + len(NEW))

    client.alias("live", "plain")
    assert not set(client.scores("live")) & {"n1", "n2", "n3"}
    client.alias("live", "sharded")
    request = pb.SearchRequest(query=QUERY, mode=pb.RETRIEVAL_MODE_HYBRID, collection="live")
    response = client.search.Search(request, timeout=60)
    assert response.applied.collection == "sharded"
    assert {"n1", "n2", "n3"} & {hit.id for hit in response.hits}


def create_sharded(client: Client, data: Path, shards: int) -> None:
    """An empty sharded collection made by CreateCollection, filled by routed upserts."""
    bad = cpb.CreateCollectionRequest(name="bad", model="default", shards=5000)
    assert code_of(lambda: client.collections.CreateCollection(bad)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    request = cpb.CreateCollectionRequest(name="fresh", model="default", shards=shards)
    info = client.collections.CreateCollection(request, timeout=120).collection
    assert (info.shard_count, info.document_count) == (shards, 0)
    assert load_shard_manifest(data / "collections" / "fresh").shard_count == shards
    client.upsert("fresh", NEW)
    found = client.scores("fresh")
    assert set(found) == {i for i, _ in NEW}
    assert next(iter(found)) in ("n1", "n2", "n3")
    got = client.collections.GetCollection(cpb.GetCollectionRequest(name="fresh")).collection
    assert (got.shard_count, got.document_count) == (shards, len(NEW))


def delete_sharded(client: Client, data: Path) -> None:
    """Deleting the sharded collection removes it, its alias and its directory."""
    request = cpb.DeleteCollectionRequest(name="sharded")
    assert list(client.collections.DeleteCollection(request, timeout=120).removed_aliases) == [
        "live"
    ]
    assert not (data / "collections" / "sharded").exists()
    assert not list(data.glob(".tmp-*"))
    assert "sharded" not in client.listing()
    assert code_of(lambda: client.scores("sharded")) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: client.scores("live")) == grpc.StatusCode.NOT_FOUND
    assert len(client.scores("plain")) == TINY_DOCS
