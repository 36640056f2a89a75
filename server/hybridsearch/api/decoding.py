"""Deferred request decoding: undecodable requests become INVALID_ARGUMENT, not INTERNAL.

grpc decodes a request before any interceptor or servicer code runs and answers a message it
cannot parse (bad wire format, invalid UTF-8 in a string field, nesting past the limit) with
INTERNAL "Exception deserializing request!". The server's interceptor registers its handlers
without a deserializer and parses inside the call instead (with `request_decoder`, inside its
error mapping), where a failure is the caller's fault and is reported as such.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

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


def _identity(raw: Any) -> Any:
    return raw


def request_decoder(handler: grpc.RpcMethodHandler[Any, Any]) -> Callable[[Any], Any]:
    """What turns the raw request of a call of ``handler`` into what its behavior takes: a
    message, or for a request stream an async iterator of messages (identity when the
    handler has no deserializer)."""
    parse = handler.request_deserializer
    if parse is None:
        return _identity
    decode = _decoder(parse)
    if handler.request_streaming:
        return lambda raw: _decoded(raw, decode)
    return decode
