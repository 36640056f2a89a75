"""The one interceptor wraps each method's handler once and reuses it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc

from hybridsearch.api.interceptors import build_interceptors
from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.config import ServerSettings
from hybridsearch.v1 import search_pb2 as pb


@dataclass(frozen=True)
class Details:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


async def _search(request: Any, context: Any) -> pb.SearchResponse:
    return pb.SearchResponse()


def test_one_interceptor_and_one_wrapped_handler_per_method() -> None:
    (interceptor,) = build_interceptors(ServerSettings(), ServerMetrics())
    handler = grpc.unary_unary_rpc_method_handler(
        _search,
        request_deserializer=pb.SearchRequest.FromString,
        response_serializer=pb.SearchResponse.SerializeToString,
    )

    async def continuation(details: Any) -> Any:
        return handler

    def routed(method: str) -> Any:
        return asyncio.run(interceptor.intercept_service(continuation, Details(method)))

    first = routed("/hybridsearch.v1.SearchService/Search")
    assert first is not handler and first.request_deserializer is None  # decoded in the call
    assert routed("/hybridsearch.v1.SearchService/Search") is first
    assert routed("/other.Service/Method") is handler  # not this server's: untouched
