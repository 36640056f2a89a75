"""IndexService over gRPC on a live server: upserts, replacement, deletes, lookups, stats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from hybridsearch.config import ServerSettings
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import TINY_CORPUS, run_cli
from tests.integration.in_process import InProcessServer, in_process_server

SPARSE = pb.RETRIEVAL_MODE_SPARSE
DENSE = pb.RETRIEVAL_MODE_DENSE
HYBRID = pb.RETRIEVAL_MODE_HYBRID
MAX_DOCUMENT_CHARS = 2000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[InProcessServer]:
    """A server over an index created empty (with vectors), filled through the API."""
    index = tmp_path_factory.mktemp("idx") / "live"
    run_cli("index", "--empty", "--out", str(index), "--model", str(model_dir), "--no-progress")
    settings = ServerSettings(
        index=index, model=model_dir, port=0, max_document_chars=MAX_DOCUMENT_CHARS
    )
    with in_process_server(settings) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def index(channel: grpc.Channel) -> index_pb2_grpc.IndexServiceStub:
    return index_pb2_grpc.IndexServiceStub(channel)


@pytest.fixture(scope="module")
def search(channel: grpc.Channel) -> search_pb2_grpc.SearchServiceStub:
    return search_pb2_grpc.SearchServiceStub(channel)


@pytest.fixture(scope="module")
def tiny_loaded(index: index_pb2_grpc.IndexServiceStub) -> ipb.UpsertDocumentsResponse:
    """The tiny corpus upserted in three messages."""
    docs = [doc_of(json.loads(line)) for line in TINY_CORPUS.read_text().splitlines()]
    batches = [ipb.UpsertDocumentsRequest(documents=docs[i : i + 5]) for i in range(0, 12, 5)]
    response: ipb.UpsertDocumentsResponse = index.UpsertDocuments(iter(batches))
    return response


def doc_of(obj: dict[str, object]) -> ipb.Document:
    doc = ipb.Document(id=str(obj["_id"]), title=str(obj["title"]), text=str(obj["text"]))
    doc.metadata.update(obj.get("metadata") or {})  # type: ignore[arg-type]
    return doc


def upsert(
    index: index_pb2_grpc.IndexServiceStub, *docs: ipb.Document
) -> ipb.UpsertDocumentsResponse:
    response: ipb.UpsertDocumentsResponse = index.UpsertDocuments(
        iter([ipb.UpsertDocumentsRequest(documents=list(docs))])
    )
    return response


def ids(
    search: search_pb2_grpc.SearchServiceStub, query: str, mode: int, top_k: int = 10
) -> list[str]:
    response = search.Search(pb.SearchRequest(query=query, mode=mode, top_k=top_k))  # type: ignore[arg-type]
    return [h.id for h in response.hits]


def dense_score(search: search_pb2_grpc.SearchServiceStub, query: str, doc_id: str) -> float:
    response = search.Search(pb.SearchRequest(query=query, mode=DENSE, top_k=100))
    scores = {h.id: h.score for h in response.hits}
    assert len(scores) == len(response.hits), "an id appears twice in the dense arm"
    return scores[doc_id]


def test_upsert_is_searchable_in_both_arms_when_it_returns(
    tiny_loaded: ipb.UpsertDocumentsResponse, search: search_pb2_grpc.SearchServiceStub
) -> None:
    assert (tiny_loaded.accepted_count, tiny_loaded.rejected_count) == (12, 0)
    assert tiny_loaded.replaced_count == 0
    assert tiny_loaded.generation == 3  # one commit per message
    assert ids(search, "pasta tomato", SPARSE)[0] == "d04"
    assert ids(search, "cooking spaghetti with tomato sauce", DENSE)[0] == "d04"
    assert ids(search, "pasta tomato", HYBRID)[0] == "d04"


def test_upsert_matches_a_bulk_built_index_on_the_golden_query(
    tiny_loaded: ipb.UpsertDocumentsResponse, search: search_pb2_grpc.SearchServiceStub
) -> None:
    response = search.Search(pb.SearchRequest(query="laminar boundary layer", top_k=4, mode=SPARSE))
    # the same ids and BM25 scores as tests/integration/test_sparse_api.py's bulk-built index
    assert [h.id for h in response.hits] == ["d01", "d11", "d07", "d06"]
    assert [round(h.score, 4) for h in response.hits] == [4.1714, 4.1143, 3.6275, 2.9293]


def test_upsert_rejects_invalid_documents_one_by_one(
    index: index_pb2_grpc.IndexServiceStub, search: search_pb2_grpc.SearchServiceStub
) -> None:
    # A NaN has no JSON form: it used to fail the whole call (INTERNAL), the batch unindexed.
    nan_doc = ipb.Document(id="rej-nan", text="walrus with a NaN")
    nan_doc.metadata.update({"weight": float("nan")})
    batches = [
        ipb.UpsertDocumentsRequest(
            documents=[
                ipb.Document(id="", text="no id here"),
                ipb.Document(id="rej-ok-1", text="walrus colony on an ice floe"),
            ]
        ),
        ipb.UpsertDocumentsRequest(
            documents=[
                ipb.Document(id="rej-big", text="walrus " * MAX_DOCUMENT_CHARS),
                ipb.Document(id="   ", text="blank id"),
                ipb.Document(id="x" * 600, text="id too long"),
                ipb.Document(id="rej-ok-2", title="Walrus", text="tusks and whiskers"),
            ]
        ),
        ipb.UpsertDocumentsRequest(documents=[nan_doc, ipb.Document(id="rej-ok-3", text="walrus")]),
    ]
    response = index.UpsertDocuments(iter(batches))
    assert (response.accepted_count, response.rejected_count) == (3, 5)
    rejected = {r.position: (r.id, r.reason) for r in response.rejected}
    assert set(rejected) == {0, 2, 3, 4, 6}
    assert "empty id" in rejected[0][1]
    assert rejected[2][0] == "rej-big" and "characters" in rejected[2][1]
    assert "empty id" in rejected[3][1]
    assert "512 bytes" in rejected[4][1]
    assert rejected[6] == (
        "rej-nan",
        "metadata: numbers must be finite (NaN and infinities are not accepted)",
    )
    assert sorted(ids(search, "walrus", SPARSE)) == ["rej-ok-1", "rej-ok-2", "rej-ok-3"]
    with pytest.raises(grpc.RpcError) as info:
        index.GetDocument(ipb.GetDocumentRequest(id="rej-big"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_upsert_of_an_existing_id_replaces_it_in_both_arms(
    index: index_pb2_grpc.IndexServiceStub, search: search_pb2_grpc.SearchServiceStub
) -> None:
    zebra = "zebra stripes grazing on the african savanna"
    upsert(index, ipb.Document(id="rep-1", title="Zebras", text=zebra))
    assert ids(search, "zebra savanna", SPARSE) == ["rep-1"]
    before = dense_score(search, "zebras on the savanna", "rep-1")
    response = upsert(
        index,
        ipb.Document(id="rep-1", title="Quasars", text="a distant quasar outshines its galaxy"),
    )
    assert (response.accepted_count, response.replaced_count) == (1, 1)
    assert ids(search, "zebra savanna", SPARSE) == []
    assert ids(search, "quasar galaxy", SPARSE) == ["rep-1"]
    after = dense_score(search, "zebras on the savanna", "rep-1")
    assert after < before - 0.2, (before, after)  # the vector was replaced, not duplicated
    hybrid = ids(search, "quasar galaxy", HYBRID, top_k=100)
    assert hybrid.count("rep-1") == 1 and hybrid[0] == "rep-1"
    document = index.GetDocument(ipb.GetDocumentRequest(id="rep-1")).document
    assert (document.title, document.text) == ("Quasars", "a distant quasar outshines its galaxy")


def test_duplicate_ids_in_one_batch_keep_the_last(
    index: index_pb2_grpc.IndexServiceStub, search: search_pb2_grpc.SearchServiceStub
) -> None:
    response = upsert(
        index,
        ipb.Document(id="dup-1", text="first version about narwhals"),
        ipb.Document(id="dup-1", text="second version about axolotls"),
    )
    assert (response.accepted_count, response.replaced_count) == (2, 1)
    assert ids(search, "narwhals", SPARSE) == []
    assert ids(search, "axolotls", SPARSE) == ["dup-1"]


def test_delete_removes_from_both_arms_and_reports_unknown_ids(
    index: index_pb2_grpc.IndexServiceStub, search: search_pb2_grpc.SearchServiceStub
) -> None:
    upsert(index, ipb.Document(id="del-1", text="platypus lays eggs"))
    assert "del-1" in ids(search, "platypus", DENSE, top_k=100)
    response = index.DeleteDocuments(
        ipb.DeleteDocumentsRequest(ids=["del-1", "no-such-id", "del-1"])
    )
    assert response.deleted_count == 1
    assert list(response.not_found_ids) == ["no-such-id"]
    assert ids(search, "platypus", SPARSE) == []
    assert "del-1" not in ids(search, "platypus", DENSE, top_k=100)
    assert "del-1" not in ids(search, "platypus", HYBRID, top_k=100)
    with pytest.raises(grpc.RpcError) as info:
        index.GetDocument(ipb.GetDocumentRequest(id="del-1"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    again = index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["del-1"]))
    assert (again.deleted_count, list(again.not_found_ids)) == (0, ["del-1"])
    assert again.generation == response.generation  # nothing to commit


def test_delete_needs_ids(index: index_pb2_grpc.IndexServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        index.DeleteDocuments(ipb.DeleteDocumentsRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_document_returns_stored_fields(
    tiny_loaded: ipb.UpsertDocumentsResponse, index: index_pb2_grpc.IndexServiceStub
) -> None:
    document = index.GetDocument(ipb.GetDocumentRequest(id="d04")).document
    assert (document.id, document.title) == ("d04", "Pasta recipes")
    assert document.text.startswith("Boil the pasta")
    assert list(document.metadata["tags"]) == ["food"]
    with pytest.raises(grpc.RpcError) as info:
        index.GetDocument(ipb.GetDocumentRequest(id="missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        index.GetDocument(ipb.GetDocumentRequest(id=" "))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_index_stats_follows_commits(
    tiny_loaded: ipb.UpsertDocumentsResponse, index: index_pb2_grpc.IndexServiceStub
) -> None:
    before = index.GetIndexStats(ipb.GetIndexStatsRequest())
    assert before.has_vectors and before.writable
    assert before.dimension == 384
    assert before.encoder_model_id
    assert before.execution_provider.endswith("ExecutionProvider")
    assert before.format_version == 2
    assert before.size_bytes > 0
    assert before.last_commit_time.seconds > 0
    upsert(index, ipb.Document(id="stats-1", text="okapi in the rainforest"))
    upsert(index, ipb.Document(id="stats-1", text="okapi, replaced"))
    after = index.GetIndexStats(ipb.GetIndexStatsRequest())
    assert after.generation == before.generation + 2
    assert after.document_count == before.document_count + 1
    assert after.deleted_count == before.deleted_count + 1
    assert after.last_commit_time.seconds >= before.last_commit_time.seconds


def test_health_and_reflection_list_the_index_service(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="hybridsearch.v1.IndexService"))
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert {"hybridsearch.v1.IndexService", "hybridsearch.v1.SearchService"} <= set(services)
