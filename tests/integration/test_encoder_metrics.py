"""The query batcher's metrics cover every collection of a data directory: each distinct
batcher (dense arm) once, however many collections share it, whichever is the default.

They were read from the default collection only: absent when it was BM25-only, and missing
every other model's batcher otherwise.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from hybridsearch.config import ServerSettings
from hybridsearch.engine.batching import BatchingSettings
from hybridsearch.engine.catalog import CollectionEntry
from hybridsearch.engine.data_dir import open_data_dir
from hybridsearch.engine.dense_arm import DenseArm
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.registry import CollectionRegistry
from hybridsearch.v1 import collection_pb2 as cpb
from hybridsearch.v1 import collection_pb2_grpc, index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import search_pb2 as pb
from tests.collection_fakes import HASH_MODEL, HashCollectionFactory
from tests.integration.in_process import in_process_server

BATCHES = "hybridsearch_encoder_batches_total"
QUERIES = "hybridsearch_encoder_batched_queries_total"
OWN_ARM = "solo"  # the collection with a batcher of its own; the others share one


class TwoBatcherFactory(HashCollectionFactory):
    """`HashEncoder` collections with micro-batching: ``solo`` has a batcher of its own,
    every other dense collection shares the second one."""

    def __init__(self) -> None:
        super().__init__()
        self.arm.close()
        self.arms = {name: DenseArm(self.encoder, BatchingSettings()) for name in ("own", "shared")}

    def open(self, path: Path, entry: CollectionEntry) -> LoadedIndex:
        self.arm = self.arms["own" if entry.name == OWN_ARM else "shared"]
        return super().open(path, entry)

    def close(self) -> None:
        for arm in self.arms.values():
            arm.close()


def test_encoder_metrics_sum_every_batcher_once_with_a_bm25_only_default(tmp_path: Path) -> None:
    factory = TwoBatcherFactory()

    def load(settings: ServerSettings) -> CollectionRegistry:
        assert settings.data_dir is not None
        return open_data_dir(settings.data_dir, settings, factory)

    # no --model: the data directory's `default` collection is BM25-only
    settings = ServerSettings(port=0, data_dir=tmp_path / "data")
    with (
        in_process_server(settings, load) as server,  # type: ignore[arg-type]
        grpc.insecure_channel(server.address) as channel,
    ):
        collections = collection_pb2_grpc.CollectionServiceStub(channel)
        index = index_pb2_grpc.IndexServiceStub(channel)
        search = search_pb2_grpc.SearchServiceStub(channel)
        searches = {"a": 2, "b": 3, OWN_ARM: 4}  # a and b share a batcher
        for name in searches:
            collections.CreateCollection(cpb.CreateCollectionRequest(name=name, model=HASH_MODEL))
            docs = [ipb.Document(id="d1", text="laminar flow over a flat plate")]
            index.UpsertDocuments(
                iter([ipb.UpsertDocumentsRequest(collection=name, documents=docs)])
            )
        before = server.metric(QUERIES) or 0.0
        for name, count in searches.items():
            for i in range(count):
                request = pb.SearchRequest(
                    query=f"flow {i}", mode=pb.RETRIEVAL_MODE_HYBRID, collection=name
                )
                assert [hit.id for hit in search.Search(request, timeout=30).hits] == ["d1"]
        queries = server.metric(QUERIES)
        assert queries is not None, "no encoder metrics: only the BM25-only default was read"
        assert queries - before == sum(searches.values())  # each batcher counted once
        assert (server.metric(BATCHES) or 0.0) >= 2  # at least one run of each batcher
        assert server.metric("hybridsearch_encoder_queue") == 0
