"""Deferred request decoding: undecodable requests become INVALID_ARGUMENT, not INTERNAL.

grpc decodes a request before any interceptor or servicer code runs and answers a message it
cannot parse (bad wire format, invalid UTF-8 in a string field, nesting past the limit) with
INTERNAL "Exception deserializing request!". This interceptor registers hybridsearch's
handlers without a deserializer and parses inside the call instead, where a failure is the
caller's fault and is reported as such. It must sit inside `ErrorMappingInterceptor`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hybridsearch.api.handlers import (
    Context,
    StreamBehavior,
    UnaryBehavior,
    is_served_method,
    rewrap,
)
from hybridsearch.errors import InvalidArgumentError

Parse = Callable[[bytes], Any]


def _decoder(parse: Parse) -> Parse:
    def decode(raw: bytes) -> Any:
        try:
            return parse(raw)
        except Exception as exc:  # DecodeError, and whatever else a parser raises on junk
            raise InvalidArgumentError.single(
                "request", "not a valid protobuf message of this method's request type"
            ) from exc

    return decode


async def _decoded(requests: AsyncIterator[bytes], decode: Parse) -> AsyncIterator[Any]:
    async for raw in requests:
        yield decode(raw)


class DeferredDecodingInterceptor(grpc.aio.ServerInterceptor):
    """Moves request parsing of hybridsearch methods from grpc's codec into the call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or not is_served_method(handler_call_details.method):
            return handler
        parse = handler.request_deserializer
        if parse is None:
            return handler
        decode = _decoder(parse)
        streaming = handler.request_streaming

        def request_of(raw: Any) -> Any:
            return _decoded(raw, decode) if streaming else decode(raw)

        def wrap_unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def decoded(raw: Any, context: Context) -> Any:
                return await behavior(request_of(raw), context)

            return decoded

        def wrap_stream(behavior: StreamBehavior) -> StreamBehavior:
            async def decoded(raw: Any, context: Context) -> AsyncIterator[Any]:
                async for response in behavior(request_of(raw), context):
                    yield response

            return decoded

        return rewrap(handler, wrap_unary, wrap_stream, request_deserializer=None)
