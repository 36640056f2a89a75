"""Typed wrappers over the generated SearchService stubs: ``HybridSearchClient`` (blocking)
and ``AsyncHybridSearchClient`` (asyncio)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc
import grpc.aio

from hybridsearch_client._errors import (
    HybridSearchError,
    error_from_rpc_error,
    error_from_stream_status,
)
from hybridsearch_client._gen.hybridsearch.v1 import search_pb2, search_pb2_grpc
from hybridsearch_client._requests import (
    QueryLike,
    TlsConfig,
    build_search_request,
    call_metadata,
)

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class StreamResult:
    """One answer on a ``SearchStream``: exactly one of ``response`` and ``error`` is set."""

    request_id: str
    response: search_pb2.SearchResponse | None
    error: HybridSearchError | None

    @classmethod
    def from_proto(cls, message: search_pb2.SearchStreamResponse) -> StreamResult:
        if message.HasField("error"):
            return cls(message.request_id, None, error_from_stream_status(message.error))
        return cls(message.request_id, message.response, None)


def _stream_request(
    item: search_pb2.SearchStreamRequest | tuple[str, QueryLike],
) -> search_pb2.SearchStreamRequest:
    if isinstance(item, search_pb2.SearchStreamRequest):
        return item
    request_id, query = item
    return search_pb2.SearchStreamRequest(request_id=request_id, search=build_search_request(query))


StreamItem = search_pb2.SearchStreamRequest | tuple[str, QueryLike]
"""A stream request, or a ``(request_id, query)`` pair."""


class HybridSearchClient:
    """Blocking client. ``timeout`` (seconds) is the default deadline of every call; each
    method takes its own ``timeout`` too. Without ``tls`` the channel is plaintext.
    ``bearer_token`` is sent as ``authorization: Bearer ...`` on every call; ``interceptors``
    are ``grpc`` client interceptors wrapped around the channel.

    >>> with HybridSearchClient("127.0.0.1:50051") as client:
    ...     hits = client.search("what is bm25", top_k=5).hits
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        tls: TlsConfig | None = None,
        bearer_token: str | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[Any] = (),
    ) -> None:
        options = list(channel_options)
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            options += tls.channel_options()
            self._channel = grpc.secure_channel(target, tls.credentials(), options=options)
        if interceptors:
            self._channel = grpc.intercept_channel(self._channel, *interceptors)
        self._stub = search_pb2_grpc.SearchServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = call_metadata(bearer_token)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    def search(
        self, query: QueryLike, *, timeout: float | None = None, **options: Any
    ) -> search_pb2.SearchResponse:
        """Run one query. ``options`` are ``top_k``, ``mode``, ``fusion``, ``explain`` and
        ``return_fields`` (ignored when ``query`` is already a ``SearchRequest``)."""
        request = build_search_request(query, **options)
        try:
            response: search_pb2.SearchResponse = self._stub.Search(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    def batch_search(
        self, queries: Sequence[QueryLike], *, timeout: float | None = None, **options: Any
    ) -> list[search_pb2.SearchResponse]:
        """Run several queries in one call; responses come back in request order."""
        request = search_pb2.BatchSearchRequest(
            requests=[build_search_request(q, **options) for q in queries]
        )
        try:
            response = self._stub.BatchSearch(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        return list(response.responses)

    def search_stream(
        self, requests: Iterable[StreamItem], *, timeout: float | None = None
    ) -> Iterator[StreamResult]:
        """Send many queries on one stream; yields answers as they arrive (any order).
        A per-request error is a ``StreamResult.error``; a failed stream raises."""
        call = self._stub.SearchStream(
            (_stream_request(item) for item in requests),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        try:
            for message in call:
                yield StreamResult.from_proto(message)
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncHybridSearchClient:
    """asyncio client with the same surface as :class:`HybridSearchClient`; create it inside
    the running event loop."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        tls: TlsConfig | None = None,
        bearer_token: str | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        options = list(channel_options)
        if tls is None:
            self._channel = grpc.aio.insecure_channel(
                target, options=options, interceptors=interceptors
            )
        else:
            options += tls.channel_options()
            self._channel = grpc.aio.secure_channel(
                target, tls.credentials(), options=options, interceptors=interceptors
            )
        self._stub = search_pb2_grpc.SearchServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = call_metadata(bearer_token)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    async def search(
        self, query: QueryLike, *, timeout: float | None = None, **options: Any
    ) -> search_pb2.SearchResponse:
        """Run one query (see :meth:`HybridSearchClient.search`)."""
        request = build_search_request(query, **options)
        try:
            response: search_pb2.SearchResponse = await self._stub.Search(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    async def batch_search(
        self, queries: Sequence[QueryLike], *, timeout: float | None = None, **options: Any
    ) -> list[search_pb2.SearchResponse]:
        """Run several queries in one call; responses come back in request order."""
        request = search_pb2.BatchSearchRequest(
            requests=[build_search_request(q, **options) for q in queries]
        )
        try:
            response: search_pb2.BatchSearchResponse = await self._stub.BatchSearch(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        return list(response.responses)

    async def search_stream(
        self,
        requests: Iterable[StreamItem] | AsyncIterable[StreamItem],
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[StreamResult]:
        """Send many queries on one stream; yields answers as they arrive (any order)."""

        async def outgoing() -> AsyncIterator[search_pb2.SearchStreamRequest]:
            if isinstance(requests, AsyncIterable):
                async for item in requests:
                    yield _stream_request(item)
            else:
                for item in requests:
                    yield _stream_request(item)

        call = self._stub.SearchStream(
            outgoing(), timeout=self._deadline(timeout), metadata=self._metadata
        )
        try:
            async for message in call:
                yield StreamResult.from_proto(message)
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
