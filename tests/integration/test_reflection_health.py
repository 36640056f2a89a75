"""Reflection (grpcurl-style dynamic client, no project stubs), health and shutdown."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from hybridsearch.api.server import SearchServer
from hybridsearch.config import ServerSettings
from hybridsearch.engine.loader import load_engine
from hybridsearch.engine.searcher import HybridSearcher
from tests.conftest import run_cli, start_server, wait_serving
from tests.integration.in_process import InProcessServer


def test_dynamic_client_finds_search_through_reflection(sparse_server: InProcessServer) -> None:
    with grpc.insecure_channel(sparse_server.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = database.get_services()
        assert "hybridsearch.v1.SearchService" in services
        assert "grpc.health.v1.Health" in services
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindMethodByName("hybridsearch.v1.SearchService.Search")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = json_format.Parse(
            '{"query": "boundary layer flow", "top_k": 4, "mode": "RETRIEVAL_MODE_SPARSE"}',
            request_class(),
        )
        call = channel.unary_unary(
            "/hybridsearch.v1.SearchService/Search",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        response = json_format.MessageToDict(call(request, timeout=10))
    assert len(response["hits"]) == 4
    assert all({"id", "score", "rank"} <= set(hit) for hit in response["hits"])


def test_reflection_v1_lists_the_services(sparse_server: InProcessServer) -> None:
    with grpc.insecure_channel(sparse_server.address) as channel:
        # v1 messages are wire-identical to v1alpha's
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        [answer] = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert {"hybridsearch.v1.SearchService", "grpc.reflection.v1.ServerReflection"} <= names


def test_health_goes_not_serving_then_serving(tiny_sparse_index: Path) -> None:
    """An in-process server whose index load is held back until the test releases it."""
    release = threading.Event()

    def slow_factory(settings: ServerSettings) -> HybridSearcher:
        release.wait(timeout=60)
        return load_engine(settings)

    async def scenario() -> None:
        server = SearchServer(ServerSettings(index=tiny_sparse_index, port=0), slow_factory)
        address = await server.start()
        loading = asyncio.create_task(server.load())
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "hybridsearch.v1.SearchService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            from hybridsearch.v1 import search_pb2, search_pb2_grpc

            stub = search_pb2_grpc.SearchServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Search(search_pb2.SearchRequest(query="flow"))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            release.set()
            await loading
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await server.stop()

    asyncio.run(scenario())


def test_sigterm_exits_zero(tiny_sparse_index: Path) -> None:
    server = start_server("--index", str(tiny_sparse_index))
    wait_serving(server.address)
    assert server.stop() == 0


def test_unloadable_index_exits_non_zero(tmp_path: Path) -> None:
    # a directory that holds no index (a missing one stops serve before it binds: exit 2)
    server = start_server("--index", str(tmp_path))
    assert server.process.wait(timeout=60) == 1
    server.stop()


def test_health_of_an_unknown_service_names_the_known_ones(sparse_server: InProcessServer) -> None:
    """A collection's name is no health service: the answer says so (it was a bare
    ``error: NOT_FOUND:``)."""
    done = run_cli("health", "--server", sparse_server.address, "--service", "adi", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: NOT_FOUND: no health status for service 'adi': health is reported per gRPC "
        "service, not per collection; the services are '', 'hybridsearch.v1.CollectionService', "
        "'hybridsearch.v1.IndexService', 'hybridsearch.v1.SearchService' ('' is the server as "
        "a whole)"
    )
    served = run_cli(
        "health", "--server", sparse_server.address, "--service", "hybridsearch.v1.IndexService"
    )
    assert served.stdout.strip() == "SERVING"
