"""SIGKILL of `serve --data-dir` while it creates, deletes and re-aliases collections: after a
restart the server starts, and each collection and alias is either fully there or absent."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from hybridsearch.engine.catalog import load_catalog
from hybridsearch.v1 import collection_pb2 as cpb
from hybridsearch.v1 import collection_pb2_grpc, index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import start_server


def churn(address: str, stop: threading.Event, done: list[str]) -> None:
    """Create, alias and delete collections without pause until the server dies."""
    with grpc.insecure_channel(address) as channel:
        stub = collection_pb2_grpc.CollectionServiceStub(channel)
        index = index_pb2_grpc.IndexServiceStub(channel)
        i = 0
        try:
            while not stop.is_set():
                name = f"c{i}"
                stub.CreateCollection(cpb.CreateCollectionRequest(name=name), timeout=30)
                docs = [ipb.Document(id=f"{name}-d", text=f"text of {name}")]
                index.UpsertDocuments(
                    iter([ipb.UpsertDocumentsRequest(collection=name, documents=docs)]),
                    timeout=30,
                )
                actions = [
                    cpb.AliasAction(add=cpb.AddAlias(alias=f"a{i % 3}", collection=name)),
                    cpb.AliasAction(add=cpb.AddAlias(alias="latest", collection=name)),
                ]
                stub.UpdateAliases(cpb.UpdateAliasesRequest(actions=actions), timeout=30)
                if i >= 3:
                    stub.DeleteCollection(cpb.DeleteCollectionRequest(name=f"c{i - 3}"), timeout=30)
                done.append(name)
                i += 1
        except grpc.RpcError:
            pass  # the server was killed


def check_whole(data_dir: Path, address: str) -> None:
    """Every collection the catalog names is served whole; every alias names one of them;
    nothing else is left in the data directory."""
    catalog = load_catalog(data_dir)
    assert catalog is not None
    with grpc.insecure_channel(address) as channel:
        collections = collection_pb2_grpc.CollectionServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)
        listed = collections.ListCollections(cpb.ListCollectionsRequest()).collections
        assert sorted(c.name for c in listed) == sorted(catalog.collections)
        for name in catalog.collections:
            request = pb.SearchRequest(query="text", mode=pb.RETRIEVAL_MODE_SPARSE, collection=name)
            hits = search.Search(request).hits
            assert {h.id for h in hits} <= {f"{name}-d"}
        for alias, target in catalog.aliases.items():
            got = collections.GetCollection(cpb.GetCollectionRequest(name=alias)).collection
            assert got.name == target
    assert {p.name for p in (data_dir / "collections").iterdir()} == set(catalog.collections)
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []


# A round (create, upsert, alias, delete) takes ~0.15 s on a laptop: the kills land in the
# first create, and in later rounds' creates, alias updates and deletes.
@pytest.mark.parametrize("delay_s", [0.05, 0.2, 0.45, 0.8, 1.3])
def test_sigkill_during_collection_changes_leaves_each_whole_or_absent(
    tmp_path: Path, delay_s: float
) -> None:
    data_dir = tmp_path / "data"
    server = start_server("--data-dir", str(data_dir), "--log-level", "WARNING")
    server.wait_serving(timeout=120)
    stop = threading.Event()
    done: list[str] = []
    worker = threading.Thread(target=churn, args=(server.address, stop, done), daemon=True)
    worker.start()
    threading.Event().wait(delay_s)
    server.process.kill()  # SIGKILL, wherever the churn is
    server.stop(timeout=30)
    stop.set()
    worker.join(timeout=60)

    restarted = start_server("--data-dir", str(data_dir), "--log-level", "WARNING")
    try:
        restarted.wait_serving(timeout=120)
        check_whole(data_dir, restarted.address)
        catalog = load_catalog(data_dir)
        assert catalog is not None
        # Acknowledged rounds' collections are durable, unless the round the kill cut short
        # had already deleted its oldest (round i deletes c{i-3}).
        for name in done[-2:]:
            assert name in catalog.collections
    finally:
        restarted.stop(timeout=30)
