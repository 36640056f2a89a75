"""Filters through gRPC: the tiny corpus indexed with `hybridsearch index --schema`, served
with the default model; filtered hybrid search, streams, batches, field-path violations, and
upserts whose declared metadata has the wrong type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from hybridsearch.v1 import filter_pb2 as fpb
from hybridsearch.v1 import index_pb2, index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import TINY_CORPUS, ServerProcess, run_cli, start_server
from tests.integration.test_paging_api import field_violations

QUERY = "laminar boundary layer flow transition plate"
SCHEMA = {
    "fields": [
        {"name": "year", "type": "integer"},
        {"name": "tags", "type": "keyword", "multi_valued": True},
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("filters")
    schema = root / "schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    out = root / "idx"
    run_cli(
        "index", "--corpus", str(TINY_CORPUS), "--out", str(out), "--schema", str(schema),
        "--model", str(model_dir), "--no-progress",
    )  # fmt: skip
    process = start_server("--index", str(out), "--model", str(model_dir))
    try:
        process.wait_serving()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


def _year_from(year: int) -> fpb.Filter:
    bound = fpb.RangeBound(integer=year)
    return fpb.Filter(must=[fpb.Condition(range=fpb.Range(field="year", gte=bound))])


def test_filtered_hybrid_search_returns_only_matching_documents(channel: grpc.Channel) -> None:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    unfiltered = stub.Search(pb.SearchRequest(query=QUERY, top_k=12))
    assert len(unfiltered.hits) == 12  # the dense arm ranks every document
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=12, filter=_year_from(1960)))
    assert [h.id for h in response.hits] == ["d01"]  # the only document from 1960 on
    not_food = fpb.Filter(
        must_not=[
            fpb.Condition(match=fpb.Match(field="tags", any=[fpb.MatchValue(keyword="food")]))
        ]
    )
    response = stub.Search(pb.SearchRequest(query="cooking food", top_k=12, filter=not_food))
    assert len(response.hits) == 9 and not {"d04", "d05", "d10"} & {h.id for h in response.hits}


def test_filters_in_streams_and_batches(channel: grpc.Channel) -> None:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    ids = fpb.Filter(must=[fpb.Condition(has_id=fpb.HasId(ids=["d03", "d07", "nope"]))])
    request = pb.SearchRequest(query=QUERY, top_k=5, filter=ids)
    batch = stub.BatchSearch(
        pb.BatchSearchRequest(requests=[request, pb.SearchRequest(query=QUERY)])
    )
    assert {h.id for h in batch.responses[0].hits} == {"d03", "d07"}
    assert len(batch.responses[1].hits) == 10
    stream = pb.SearchStreamRequest(request_id="r", search=request, progressive=True)
    answers = list(stub.SearchStream(iter([stream])))
    assert [a.partial for a in answers] == [True, False]  # the BM25 partial is filtered too
    assert all({h.id for h in a.response.hits} <= {"d03", "d07"} for a in answers)
    assert {h.id for h in answers[1].response.hits} == {"d03", "d07"}


def test_filter_violations_name_the_field_path(channel: grpc.Channel) -> None:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    bad = fpb.Filter(
        must=[
            fpb.Condition(exists=fpb.Exists(field="year")),
            fpb.Condition(range=fpb.Range(field="year", gte=fpb.RangeBound(datetime={}))),
        ]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Search(pb.SearchRequest(query=QUERY, filter=bad))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(caught.value)) == ["filter.must[1].range.gte"]
    undeclared = fpb.Filter(should=[fpb.Condition(exists=fpb.Exists(field="author"))])
    batch = pb.BatchSearchRequest(
        requests=[pb.SearchRequest(query=QUERY), pb.SearchRequest(query=QUERY, filter=undeclared)]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchSearch(batch)
    assert list(field_violations(caught.value)) == ["requests[1].filter.should[0].exists.field"]


def test_upserts_with_wrongly_typed_metadata_are_rejected_one_by_one(channel: grpc.Channel) -> None:
    stub = index_pb2_grpc.IndexServiceStub(channel)

    def doc(doc_id: str, metadata: dict[str, object]) -> index_pb2.Document:
        struct = struct_pb2.Struct()
        struct.update(metadata)
        return index_pb2.Document(id=doc_id, text="laminar flow", metadata=struct)

    docs = [
        doc("n1", {"year": "2020"}),
        doc("n2", {"year": 2021, "tags": ["new"], "note": "undeclared"}),
        doc("n3", {"tags": "new"}),  # a multi-valued field takes a single value too
        doc("n4", {"year": 2021.5}),
    ]
    response = stub.UpsertDocuments(iter([index_pb2.UpsertDocumentsRequest(documents=docs)]))
    assert response.accepted_count == 2
    reasons = {r.id: r.reason for r in response.rejected}
    assert reasons == {
        "n1": 'metadata.year: expected an integer (got "2020")',
        "n4": "metadata.year: expected an integer (got 2021.5)",
    }
    search = search_pb2_grpc.SearchServiceStub(channel)
    response2 = search.Search(pb.SearchRequest(query=QUERY, top_k=12, filter=_year_from(2000)))
    assert [h.id for h in response2.hits] == ["n2"]


def test_cli_search_takes_a_filter_as_json(server: ServerProcess, channel: grpc.Channel) -> None:
    year = '{"must": [{"range": {"field": "year", "gte": {"integer": "1960"}}}]}'
    found = run_cli("search", QUERY, "--server", server.address, "--filter", year, "--json")
    expected = search_pb2_grpc.SearchServiceStub(channel).Search(
        pb.SearchRequest(query=QUERY, filter=_year_from(1960))
    )
    assert [hit["id"] for hit in json.loads(found.stdout)["hits"]] == [h.id for h in expected.hits]
    assert expected.hits and len(expected.hits) < 12  # the filter leaves some documents out
    bad = run_cli("search", QUERY, "--server", server.address, "--filter", "{", check=False)
    assert bad.returncode == 2 and "--filter: not a Filter message in JSON" in bad.stderr
    wrong = '{"must": [{"range": {"field": "year", "gte": {"keyword": "x"}}}]}'
    refused = run_cli("search", QUERY, "--server", server.address, "--filter", wrong, check=False)
    assert refused.returncode == 2  # RangeBound has no keyword: refused before sending


def _deep_undeclared(depth: int, width: int, name: str) -> fpb.Filter:
    """A filter nested ``depth`` deep, each level matching ``width`` times on an undeclared
    (long) field: many violations, each with a long path and a quoted name."""
    level = fpb.Filter()
    for _ in range(width):
        match = fpb.Match(field=name, any=[fpb.MatchValue(keyword="k" * 100)])
        level.must_not.append(fpb.Condition(match=match))
    if depth > 0:
        level.must_not.append(fpb.Condition(filter=_deep_undeclared(depth - 1, width, name)))
    return level


@pytest.mark.parametrize("name", ["F" * 100, "\N{GRINNING FACE}" * 100])
def test_many_long_violations_still_reach_the_caller(channel: grpc.Channel, name: str) -> None:
    # Twenty violations of this size made trailers of 10-19 KB, past the 8 KiB a gRPC C-core
    # client accepts by default: it then reported RESOURCE_EXHAUSTED, not the server's error.
    stub = search_pb2_grpc.SearchServiceStub(channel)
    request = pb.SearchRequest(query=QUERY, filter=_deep_undeclared(6, 3, name))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Search(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    named = list(field_violations(caught.value))
    assert named and named[0] == "filter.must_not[0].match.field"
    assert "more invalid field(s) not listed" in (caught.value.details() or "")
