"""Admission control: a bound on hybridsearch calls in flight; beyond it, RESOURCE_EXHAUSTED.

A refused call is answered at once rather than queued, so an overloaded server stays
responsive and clients can back off or go elsewhere. A call leaves when its behavior ends:
normally, with an error, or cancelled (a caller that went away frees its place).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hybridsearch.api.errors import abort_with
from hybridsearch.api.handlers import (
    Context,
    StreamBehavior,
    UnaryBehavior,
    is_own_method,
    rejecting,
    rewrap,
)
from hybridsearch.errors import OverloadedError


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    """Counts hybridsearch calls in flight and refuses those past ``max_in_flight``."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # read by the metrics gauge; only the event loop changes it

    def _full(self) -> bool:
        return 0 < self.max_in_flight <= self.in_flight

    async def _refuse(self, context: Context) -> None:
        await abort_with(
            context,
            OverloadedError(
                f"server at capacity ({self.max_in_flight} calls in flight); retry with backoff"
            ),
        )

    def _wrap_unary(self, behavior: UnaryBehavior) -> UnaryBehavior:
        async def admitted(request: Any, context: Context) -> Any:
            if self._full():  # checked again here: the call may have waited since routing
                await self._refuse(context)
            self.in_flight += 1
            try:
                return await behavior(request, context)
            finally:
                self.in_flight -= 1

        return admitted

    def _wrap_stream(self, behavior: StreamBehavior) -> StreamBehavior:
        async def admitted(request: Any, context: Context) -> AsyncIterator[Any]:
            if self._full():
                await self._refuse(context)
            self.in_flight += 1
            try:
                async for response in behavior(request, context):
                    yield response
            finally:
                self.in_flight -= 1

        return admitted

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or not is_own_method(handler_call_details.method):
            return handler
        if self._full():
            return rejecting(handler, self._refuse)
        return rewrap(handler, self._wrap_unary, self._wrap_stream)
