"""Rewrapping gRPC method handlers: the one place that knows the four handler kinds.

Interceptors here wrap a handler's *behavior* (the coroutine or async generator grpc calls)
rather than the handler itself; `rewrap` rebuilds a handler of the same kind around new
behaviors, keeping the codec unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Context = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]
WrapUnary = Callable[[UnaryBehavior], UnaryBehavior]
WrapStream = Callable[[StreamBehavior], StreamBehavior | UnaryBehavior]
Deserializer = Callable[[bytes], Any] | None

OWN_SERVICE_PREFIX = "/hybridsearch.v1."
#: How a call of a hybridsearch method this server does not have is logged and counted.
UNKNOWN_METHOD = OWN_SERVICE_PREFIX + "unknown"
INDEX_SERVICE_PREFIX = "/hybridsearch.v1.IndexService/"
COLLECTION_SERVICE_PREFIX = "/hybridsearch.v1.CollectionService/"
# Services a read-only token may not call (they change or describe what is served).
WRITE_SERVICE_PREFIXES = (INDEX_SERVICE_PREFIX, COLLECTION_SERVICE_PREFIX)


def _never_called(request: Any, context: Any) -> Any:
    raise NotImplementedError  # pragma: no cover (replaced by `rejecting`)


# The standard services this server also serves: health and reflection (v1alpha and v1).
STANDARD_SERVICE_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def is_own_method(method: str) -> bool:
    """Whether a full method name (``/pkg.Service/Method``) is one of hybridsearch's."""
    return method.startswith(OWN_SERVICE_PREFIX)


def is_served_method(method: str) -> bool:
    """Whether a method is one of this server's: hybridsearch's, health's or reflection's.

    These get deferred decoding and the error mapping, so junk sent to any of them is
    INVALID_ARGUMENT, never an INTERNAL error logged with a traceback per call.
    """
    return is_own_method(method) or method.startswith(STANDARD_SERVICE_PREFIXES)


def rewrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    wrap_unary: WrapUnary,
    wrap_stream: WrapStream,
    *,
    request_deserializer: Deserializer | bool = True,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind whose behavior is wrapped.

    ``request_deserializer=True`` keeps the handler's own; anything else replaces it (None
    hands the raw request bytes to the behavior).
    """
    # grpc's stubs type behaviors as the sync API's; the aio server takes coroutines.
    h: Any = handler
    codec: dict[str, Any] = {
        "request_deserializer": (
            h.request_deserializer if request_deserializer is True else request_deserializer
        ),
        "response_serializer": h.response_serializer,
    }
    make: Any
    behavior: Any
    if h.unary_unary is not None:
        make, behavior = grpc.unary_unary_rpc_method_handler, wrap_unary(h.unary_unary)
    elif h.stream_unary is not None:
        make, behavior = grpc.stream_unary_rpc_method_handler, wrap_unary(h.stream_unary)
    elif h.unary_stream is not None:
        make = grpc.unary_stream_rpc_method_handler
        behavior = _wrap_streaming(h.unary_stream, wrap_unary, wrap_stream)
    elif h.stream_stream is not None:
        make = grpc.stream_stream_rpc_method_handler
        behavior = _wrap_streaming(h.stream_stream, wrap_unary, wrap_stream)
    else:
        return handler
    rebuilt: grpc.RpcMethodHandler[Any, Any] = make(behavior, **codec)
    return rebuilt


#: How long a write grpc refused waits for grpc to cancel its call (see `writing`).
REFUSED_WRITE_WAIT_S = 1.0


def writing(behavior: Callable[[Any, Context], AsyncGenerator[Any, None]]) -> UnaryBehavior:
    """A streaming ``behavior`` as a coroutine that writes its responses (``context.write``)
    instead of yielding them to grpc.

    A write grpc refuses (``ExecuteBatchError``, an `InternalError`) finds the call already
    ended in grpc's core: its client cancelled it, went away, or its deadline passed. grpc
    then cancels the handler, and ignores the refused write if it learnt of the cancellation
    first; the two race, and when the refused write came first grpc logged it as an ERROR
    with a traceback, although nothing was wrong. So a refused write waits here for that
    cancellation; one that grpc does not follow with a cancellation within
    `REFUSED_WRITE_WAIT_S` is raised (and logged by grpc) as before.
    """

    async def written(request: Any, context: Context) -> None:
        async with contextlib.aclosing(behavior(request, context)) as responses:
            async for response in responses:
                try:
                    await context.write(response)
                except grpc.aio.InternalError:
                    await asyncio.sleep(REFUSED_WRITE_WAIT_S)  # grpc cancels us here
                    raise

    return written


def _wrap_streaming(behavior: Any, wrap_unary: WrapUnary, wrap_stream: WrapStream) -> Any:
    """A streaming behavior is an async generator, or a coroutine that writes its responses
    with ``context.write`` (grpcio-health-checking's Watch): each kind keeps its own style."""
    return wrap_stream(behavior) if inspect.isasyncgenfunction(behavior) else wrap_unary(behavior)


def rejecting(
    handler: grpc.RpcMethodHandler[Any, Any] | None, reject: Callable[[Context], Awaitable[None]]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind that only calls ``reject`` (which aborts the call).

    The request is never decoded: rejected callers cost no parsing. With no handler (a method
    this server does not have), a streaming one: it aborts before reading, which answers a
    call of any kind.
    """
    if handler is None:
        handler = grpc.stream_stream_rpc_method_handler(_never_called)

    def wrap_unary(_: UnaryBehavior) -> UnaryBehavior:
        async def behavior(request: Any, context: Context) -> Any:
            await reject(context)

        return behavior

    def wrap_stream(_: StreamBehavior) -> StreamBehavior:
        async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
            await reject(context)
            yield  # pragma: no cover (reject aborts)

        return behavior

    return rewrap(handler, wrap_unary, wrap_stream, request_deserializer=None)
