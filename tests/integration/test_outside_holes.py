"""Regression tests for what a review from outside found (grpcurl, ghz, raw frames).

A token setting with no token, junk sent to health or reflection, Health/List, reflection
v1 describing itself, and caller input echoed into error messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from hybridsearch.errors import ECHO_CHARS
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb
from tests.conftest import ServerProcess, run_cli, start_server

JUNK = b"\xff\xff\xff\xff"


@pytest.fixture(scope="module")
def server(tiny_sparse_index: Path) -> Iterator[ServerProcess]:
    """A subprocess server whose stderr the tests read (for logged tracebacks)."""
    process = start_server("--index", str(tiny_sparse_index), "--read-only", "true")
    try:
        process.wait_serving()
        yield process
    finally:
        process.stop()


@pytest.fixture
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as opened:
        yield opened


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("--auth-tokens-file", "# only a comment\n\n   \n"),
        ("--auth-read-only-tokens-file", ""),
        ("--auth-tokens", " , "),
    ],
)
def test_a_token_setting_with_no_token_stops_start_up(
    tiny_sparse_index: Path, tmp_path: Path, setting: str, value: str
) -> None:
    if setting.endswith("-file"):
        path = tmp_path / "tokens"
        path.write_text(value)
        value = str(path)
    result = run_cli(
        "serve", "--index", str(tiny_sparse_index), "--port", "0", setting, value, check=False
    )
    assert result.returncode == 2
    assert setting in result.stderr and "holds no token" in result.stderr
    assert "listening on" not in result.stdout


@pytest.mark.parametrize(
    ("method", "streaming"),
    [
        ("/grpc.health.v1.Health/Check", False),
        ("/grpc.health.v1.Health/Watch", True),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", True),
    ],
)
def test_junk_sent_to_health_or_reflection_is_invalid_argument_and_logs_no_traceback(
    server: ServerProcess, channel: grpc.Channel, method: str, streaming: bool
) -> None:
    def identity(raw: bytes) -> bytes:
        return raw

    with pytest.raises(grpc.RpcError) as info:
        if method.endswith("ServerReflectionInfo"):
            call = channel.stream_stream(method, identity, identity)
            list(call(iter([JUNK]), timeout=10))
        elif streaming:
            list(channel.unary_stream(method, identity, identity)(JUNK, timeout=10))
        else:
            channel.unary_unary(method, identity, identity)(JUNK, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    logged = server.stderr_tail(500)
    assert "Traceback" not in logged and "DecodeError" not in logged


def test_health_watch_and_check_still_answer(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    assert stub.Check(health_pb2.HealthCheckRequest()).status == 1  # SERVING
    updates = stub.Watch(health_pb2.HealthCheckRequest(service="hybridsearch.v1.SearchService"))
    assert next(updates).status == 1
    updates.cancel()


def test_health_list_answers_every_service(channel: grpc.Channel) -> None:
    stub: object = health_pb2_grpc.HealthStub(channel)
    listed = stub.List(health_pb2.HealthListRequest(), timeout=10)  # type: ignore[attr-defined]
    statuses = {name: entry.status for name, entry in listed.statuses.items()}
    serving = health_pb2.HealthCheckResponse.SERVING
    assert statuses == {
        "": serving,
        "hybridsearch.v1.SearchService": serving,
        "hybridsearch.v1.IndexService": serving,
        "hybridsearch.v1.CollectionService": serving,
    }


def test_reflection_v1_describes_itself(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    assert "grpc.reflection.v1.ServerReflection" in database.get_services()
    file = database.FindFileContainingSymbol("grpc.reflection.v1.ServerReflection")
    assert (file.name, file.package) == (
        "grpc/reflection/v1/reflection.proto",
        "grpc.reflection.v1",
    )
    method = file.service[0].method[0]
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"


def test_get_document_with_a_huge_id_is_invalid_argument(channel: grpc.Channel) -> None:
    stub = index_pb2_grpc.IndexServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDocument(ipb.GetDocumentRequest(id="x" * 100_000), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED
    assert "longer than 512 bytes" in (info.value.details() or "")


def test_not_found_cuts_the_echoed_id(channel: grpc.Channel) -> None:
    stub = index_pb2_grpc.IndexServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDocument(ipb.GetDocumentRequest(id="y" * 500), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    details = info.value.details() or ""
    assert "y" * ECHO_CHARS in details and "y" * (ECHO_CHARS + 1) not in details
    assert "(500 characters)" in details


def test_delete_names_each_bad_id(channel: grpc.Channel) -> None:
    stub = index_pb2_grpc.IndexServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["ok", "z" * 600, ""]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert "ids[1]: id longer than 512 bytes" in details and "ids[2]: empty id" in details


def test_nested_brackets_within_the_query_limit_are_just_text(channel: grpc.Channel) -> None:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    bomb = "(" * 2000 + "flow" + ")" * 2000
    response = stub.Search(pb.SearchRequest(query=bomb, mode=pb.RETRIEVAL_MODE_SPARSE), timeout=10)
    assert response.hits
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(pb.SearchRequest(query="(" * 10_000, mode=pb.RETRIEVAL_MODE_SPARSE), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("query: at most 4096 characters")
