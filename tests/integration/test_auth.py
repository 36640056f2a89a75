"""Bearer-token auth on a live server: full and read-only tokens, open health, secrets unlogged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.config import ServerSettings
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.conftest import ServerProcess, run_cli, start_server, wait_serving
from tests.integration.in_process import in_process_server

FULL, READ_ONLY, ENV_TOKEN = "full-7f3a9c", "reader-51be02", "from-env-c0ffee"
QUERY = pb.SearchRequest(query="flow", mode=pb.RETRIEVAL_MODE_SPARSE, top_k=3)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def auth_server(tiny_sparse_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens = tmp_path_factory.mktemp("tokens")
    (tokens / "full").write_text(f"# operators\n{FULL}\n")
    (tokens / "read-only").write_text(f"{READ_ONLY}\n")
    with mock.patch.dict("os.environ", {"HYBRIDSEARCH_AUTH_TOKENS": ENV_TOKEN}):
        server = start_server(
            "--index", str(tiny_sparse_index),
            "--auth-tokens-file", str(tokens / "full"),
            "--auth-read-only-tokens-file", str(tokens / "read-only"),
        )  # fmt: skip
    try:
        wait_serving(server.address)  # health is open without a token
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="module")
def channel(auth_server: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(auth_server) as channel:
        yield channel


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("nope"),
        bearer(FULL + "x"),
        bearer(FULL[:-1]),
        (("authorization", FULL),),  # no Bearer scheme
        (("authorization", f"Basic {FULL}"),),
    ],
    ids=["missing", "unknown", "longer", "prefix", "no-scheme", "basic"],
)
def test_missing_or_wrong_token_is_unauthenticated(
    channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]
) -> None:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(QUERY, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", [FULL, READ_ONLY, ENV_TOKEN])
def test_valid_tokens_may_search(channel: grpc.Channel, token: str) -> None:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    assert stub.Search(QUERY, metadata=bearer(token)).hits
    assert stub.Search(QUERY, metadata=(("authorization", f"bearer  {token} "),)).hits


def test_read_only_token_may_not_write(channel: grpc.Channel) -> None:
    for method in ("UpsertDocuments", "DeleteDocuments", "GetIndexStats"):
        call = channel.unary_unary(f"/hybridsearch.v1.IndexService/{method}")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", metadata=bearer(READ_ONLY))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as info:
            call(b"", metadata=())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # a full token passes auth: the method runs (an empty request may well succeed)
        try:
            call(b"", metadata=bearer(FULL))
        except grpc.RpcError as error:
            assert error.code() not in (
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED,
            )


def test_health_and_reflection_stay_open(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == 1  # SERVING
    reflection = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )
    from grpc_reflection.v1alpha import reflection_pb2

    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = list(
        reflection(
            iter([request.SerializeToString()]),
        )
    )
    services = reflection_pb2.ServerReflectionResponse.FromString(replies[0])
    names = {s.name for s in services.list_services_response.service}
    assert "hybridsearch.v1.SearchService" in names


def test_cli_search_sends_the_token(auth_server: str) -> None:
    ok = run_cli("search", "flow", "--server", auth_server, "--mode", "sparse", "--token", FULL)
    assert "hits" in ok.stdout
    refused = run_cli("search", "flow", "--server", auth_server, "--mode", "sparse", check=False)
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr


def test_health_can_require_a_token(tiny_sparse_index: Path) -> None:
    server: ServerProcess
    with mock.patch.dict("os.environ", {"HYBRIDSEARCH_AUTH_TOKENS": f"a,{FULL}"}):
        server = start_server("--index", str(tiny_sparse_index), "--auth-health", "true")
    try:
        wait_serving(server.address, metadata=bearer(FULL))
        with grpc.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                health.Check(health_pb2.HealthCheckRequest())
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        probe = run_cli("health", "--server", server.address, "--token", FULL)
        assert probe.stdout.strip() == "SERVING"
        assert run_cli("health", "--server", server.address, check=False).returncode == 1
    finally:
        assert server.stop() == 0


def test_calls_to_methods_that_do_not_exist_are_counted_under_one_name(
    tiny_sparse_index: Path,
) -> None:
    # Refused for want of a token, each made-up method name used to become a metric series
    # (and a cached one): 10,000 calls with 2 kB names took the server to 1 GB.
    settings = ServerSettings(index=tiny_sparse_index, port=0, auth_tokens=FULL)
    with (
        in_process_server(settings) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        for i in range(20):
            call = channel.unary_unary(f"/hybridsearch.v1.SearchService/Made{i}{'x' * 2000}")
            with pytest.raises(grpc.RpcError) as info:
                call(b"")
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The call is recorded when its handler ends, which may be just after the client
        # has its status: wait (briefly) for the last one.
        deadline = time.monotonic() + 10
        while (calls := server.metric(
            "hybridsearch_rpc_calls_total", method="unknown", code="UNAUTHENTICATED"
        )) < 20 and time.monotonic() < deadline:  # fmt: skip
            time.sleep(0.05)
        assert calls == 20
        assert "Made" not in server.scrape()
