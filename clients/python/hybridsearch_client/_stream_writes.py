"""The async client's own innermost interceptors: they write a streaming call's requests
themselves, so a call the server ends while a request is being written keeps the server's
status.

grpc.aio (grpc/grpc#36066) writes a request iterable in a task of its own; a write still in
flight when the server ends the call fails, and grpc.aio then replaces the status the server
sent (``UNAVAILABLE`` at a server stop) with ``INTERNAL`` "Internal error from Core". The status
arrives before that failure is handled, so a writer cancelled the moment the call has its status
leaves it alone: a cancelled write does not touch the status. These interceptors run last, next
to the real call, so they see every request whatever the caller's own interceptors did to the
stream (grpc.aio feeds ``call.write`` through such interceptors as an iterator too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

import grpc
import grpc.aio


def _cancel(task: asyncio.Future[None]) -> None:
    task.cancel()


async def _write_all(call: Any, requests: Iterable[Any] | AsyncIterable[Any]) -> None:
    """Write ``requests`` on ``call``, then half-close it. A call that has ended stops the
    writing quietly (its reader reports how it ended); a failure of ``requests`` cancels the
    call, as grpc.aio's own writer does."""
    try:
        if isinstance(requests, AsyncIterable):
            async for request in requests:
                await call.write(request)
        else:
            for request in requests:
                await call.write(request)
        await call.done_writing()
    except (grpc.RpcError, asyncio.InvalidStateError):
        return  # the call has ended
    except Exception:
        call.cancel()


async def _start_writing(
    continuation: Callable[..., Any],
    client_call_details: grpc.aio.ClientCallDetails,
    request_iterator: Iterable[Any] | AsyncIterable[Any] | None,
) -> Any:
    """Start the call without a request iterable (grpc.aio's write style, as a stub called
    without one) and write ``request_iterator`` on it from a task that is cancelled as the
    call gets its status (the call's done callbacks run as it is set). Without requests (an
    interceptor before this one writes them itself) the call is handed on as it is."""
    call = await continuation(client_call_details, None)
    if request_iterator is not None:
        writer = asyncio.ensure_future(_write_all(call, request_iterator))
        call.add_done_callback(lambda _call: _cancel(writer))
    return call


class StreamStreamWrites(grpc.aio.StreamStreamClientInterceptor):
    """Writes the requests of every stream-stream call (SearchStream) itself."""

    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Iterable[Any] | AsyncIterable[Any] | None,
    ) -> Any:
        return await _start_writing(continuation, client_call_details, request_iterator)


class StreamUnaryWrites(grpc.aio.StreamUnaryClientInterceptor):
    """Writes the requests of every stream-unary call (UpsertDocuments) itself."""

    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Iterable[Any] | AsyncIterable[Any] | None,
    ) -> Any:
        return await _start_writing(continuation, client_call_details, request_iterator)


def with_stream_writes(
    interceptors: Iterable[grpc.aio.ClientInterceptor],
) -> list[grpc.aio.ClientInterceptor]:
    """The caller's ``interceptors`` followed by the client's writers (the last run innermost)."""
    return [*interceptors, StreamStreamWrites(), StreamUnaryWrites()]
