"""SearchService: validate, convert, run the engine in a thread pool, convert back."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from hybridsearch.api.convert import query_from_proto, result_to_proto
from hybridsearch.api.errors import INTERNAL_MESSAGE, status_code_for, violations_of
from hybridsearch.config import ServerSettings
from hybridsearch.encoders.batching import CancelScope, cancel_scope
from hybridsearch.engine import HybridSearcher
from hybridsearch.errors import (
    HybridSearchError,
    InvalidArgumentError,
    OverloadedError,
    UnavailableError,
)
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")
STREAM_MAX_IN_FLIGHT = 32


class EngineSlot:
    """Holds the engine once the index is loaded; calls before that get UNAVAILABLE."""

    def __init__(self) -> None:
        self._engine: HybridSearcher | None = None

    def set(self, engine: HybridSearcher) -> None:
        """Publish the loaded engine."""
        self._engine = engine

    def get(self) -> HybridSearcher:
        """The engine, or UNAVAILABLE while the index is loading."""
        if self._engine is None:
            raise UnavailableError("the index is still loading; retry shortly")
        return self._engine


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    """Implements hybridsearch.v1.SearchService."""

    def __init__(
        self, engine: EngineSlot, settings: ServerSettings, executor: ThreadPoolExecutor
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._executor = executor
        self._in_flight = 0

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run engine work in the pool; bounded admission, cancellation reaches the batcher."""
        if self._in_flight >= self._settings.max_in_flight:
            raise OverloadedError(
                f"{self._settings.max_in_flight} searches in flight; retry with backoff"
            )
        scope = CancelScope()
        context = contextvars.copy_context()
        context.run(cancel_scope.set, scope)
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, context.run, fn, *args)
        except asyncio.CancelledError:
            scope.cancel()  # the RPC was cancelled or timed out: drop its queued encoding
            raise
        finally:
            self._in_flight -= 1

    async def _search(self, request: pb.SearchRequest) -> pb.SearchResponse:
        query = query_from_proto(request, self._settings)
        engine = self._engine.get()
        result = await self._run(engine.search, query)
        return result_to_proto(result)

    async def Search(  # noqa: N802 (gRPC method name)
        self, request: pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SearchResponse:
        """One query."""
        return await self._search(request)

    async def BatchSearch(  # noqa: N802
        self, request: pb.BatchSearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchSearchResponse:
        """Several queries, one encoder run."""
        count = len(request.requests)
        if not 1 <= count <= self._settings.max_batch_queries:
            raise InvalidArgumentError.single(
                "requests",
                f"must hold 1 to {self._settings.max_batch_queries} requests (got {count})",
            )
        violations = []
        queries = []
        for i, item in enumerate(request.requests):
            try:
                queries.append(
                    query_from_proto(item, self._settings, field_prefix=f"requests[{i}].")
                )
            except InvalidArgumentError as exc:
                violations.extend(exc.violations)
        if violations:
            raise InvalidArgumentError(violations)
        engine = self._engine.get()
        results = await self._run(engine.search_batch, queries)
        return pb.BatchSearchResponse(responses=[result_to_proto(r) for r in results])

    async def SearchStream(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.SearchStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.SearchStreamResponse]:
        """Many queries on one stream; each answer is sent as soon as it is ready."""
        answers: asyncio.Queue[pb.SearchStreamResponse | None] = asyncio.Queue()
        slots = asyncio.Semaphore(STREAM_MAX_IN_FLIGHT)
        pending: set[asyncio.Task[None]] = set()

        async def answer(request: pb.SearchStreamRequest) -> None:
            try:
                response = await self._search(request.search)
                await answers.put(
                    pb.SearchStreamResponse(request_id=request.request_id, response=response)
                )
            except Exception as exc:
                await answers.put(_error_response(request.request_id, exc))
            finally:
                slots.release()

        async def read_requests() -> None:
            async for request in request_iterator:
                await slots.acquire()  # bounded in-flight work; the client is flow-controlled
                task = asyncio.create_task(answer(request))
                pending.add(task)
                task.add_done_callback(pending.discard)
            while pending:
                await asyncio.gather(*list(pending))
            await answers.put(None)

        reader = asyncio.create_task(read_requests())
        try:
            while (item := await answers.get()) is not None:
                yield item
            await reader
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()


def _error_response(request_id: str, exc: Exception) -> pb.SearchStreamResponse:
    if isinstance(exc, HybridSearchError) and status_code_for(exc) != grpc.StatusCode.INTERNAL:
        code, message = status_code_for(exc), str(exc)
    else:
        log.error("unexpected error in a stream request", exc_info=exc)
        code, message = grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
    error = pb.ErrorStatus(code=code.value[0], message=message)
    for violation in violations_of(exc):
        error.field_violations.add(field=violation.field, description=violation.description)
    return pb.SearchStreamResponse(request_id=request_id, error=error)
