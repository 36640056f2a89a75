"""SearchService: validate, convert, run the engine in a thread pool, convert back.

A sparse-only query of a local index whose searches take less than `INLINE_SPARSE_MAX_US`
(a running average per collection) runs on the event loop instead: the hop to the pool
(submit, wake a thread, wake the loop again) costs more CPU and latency than such a search,
and tantivy holds the GIL while it searches, so the pool would not run it alongside the loop
anyway. Slower ones (a large index, a filter, PRF, stored fields or highlights, many hits)
keep the pool, so the loop stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from hybridsearch.api.admission import Admission, StreamAdmission
from hybridsearch.api.convert import request_from_proto, result_to_proto
from hybridsearch.api.deadlines import check_deadline, deadline_of, work_context
from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.api.errors import abort_with, call_status
from hybridsearch.api.response_size import too_large
from hybridsearch.config import ServerSettings
from hybridsearch.engine.batching import CancelScope, cancel_scope
from hybridsearch.engine.registry import ServedCollection
from hybridsearch.engine.request import resolve_batch, resolve_query
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import UnavailableError, echo
from hybridsearch.types import Query, RetrievalMode, SearchResult
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc

access_log = logging.getLogger("hybridsearch.access")
STREAM_METHOD = "SearchService/SearchStream"  # as the access log names methods

T = TypeVar("T")
INLINE_SPARSE_MAX_US = 1000.0
#: The most hits (offset + top_k) of a query run on the loop.
INLINE_MAX_HITS = 100
_COST_WEIGHT = 0.1  # of the newest search in the running average


class _SparseCosts:
    """A running average of the time sparse-only searches take, per collection."""

    def __init__(self) -> None:
        self._average_us: dict[str, float] = {}

    def cheap(self, collection: str) -> bool:
        """Whether its searches have been cheaper than the hop (a new collection: yes)."""
        return self._average_us.get(collection, 0.0) < INLINE_SPARSE_MAX_US

    def observe(self, collection: str, result: SearchResult) -> None:
        before = self._average_us.get(collection)
        took = float(result.timings.total_us)
        self._average_us[collection] = (
            took if before is None else before + _COST_WEIGHT * (took - before)
        )


def _inlinable(searcher: object, query: Query) -> bool:
    """A query that may run on the loop: sparse-only, on a local index, no filter, no PRF,
    and whose cost cannot grow with what it asks for: no stored fields or highlights (one
    highlight of a 1 MB document takes a quarter of a second, and the loop answers nothing
    else meanwhile) and at most `INLINE_MAX_HITS` hits."""
    return (
        query.mode is RetrievalMode.SPARSE
        and isinstance(searcher, HybridSearcher)
        and query.filter is None
        and not query.prf.enabled
        and not query.return_fields
        and query.highlight is None
        and query.offset + query.top_k <= INLINE_MAX_HITS
    )


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    """Implements hybridsearch.v1.SearchService."""

    def __init__(
        self,
        engine: EngineSlot,
        settings: ServerSettings,
        executor: ThreadPoolExecutor,
        stopping: asyncio.Event | None = None,
        admission: Admission | None = None,
    ) -> None:
        """``stopping``: set when the graceful stop begins; open streams then take no more
        requests (see `SearchStream`). ``admission``: the server's in-flight bound, which a
        stream's requests enter (None: no bound)."""
        self._engine = engine
        self._admission = admission if admission is not None else Admission(0)
        self._stopping = stopping if stopping is not None else asyncio.Event()
        self._settings = settings
        self._executor = executor
        self._defaults = settings.query_defaults
        self._limits = settings.request_limits
        self._sparse_costs = _SparseCosts()

    def _query(self, request: pb.SearchRequest) -> Query:
        """The resolved query of a request (raises `InvalidArgumentError`)."""
        return resolve_query(request_from_proto(request), self._defaults, self._limits)

    async def _run(
        self, context: grpc.aio.ServicerContext[Any, Any], fn: Callable[..., T], *args: Any
    ) -> T:
        """Run engine work in the pool, unless the caller's deadline passes before it starts.

        A call whose caller cancels (or whose deadline grpc enforces first) is cancelled here;
        its queued work item is then dropped before it starts, and the request's `CancelScope`
        is cancelled, which drops its query encoding if it is still waiting in the batcher.
        """
        deadline = deadline_of(context)

        def guarded() -> T:
            check_deadline(deadline, "while the query waited")
            return fn(*args)

        check_deadline(deadline, "before the search started")
        scope = CancelScope()
        work = work_context(deadline)
        work.run(cancel_scope.set, scope)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work.run, guarded)
        except asyncio.CancelledError:
            scope.cancel()
            raise

    async def _search(
        self, request: pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SearchResponse:
        query = self._query(request)
        with self._engine.use(request.collection) as collection:
            searcher = collection.searcher
            if not _inlinable(searcher, query):
                result = await self._run(context, searcher.search, query)
                return _answer(result, collection.name)
            if self._sparse_costs.cheap(collection.name):
                check_deadline(deadline_of(context), "before the search started")
                result = searcher.search(query)
            else:
                result = await self._run(context, searcher.search, query)
            self._sparse_costs.observe(collection.name, result)
        return _answer(result, collection.name)

    async def _search_progressive(
        self,
        request: pb.SearchStreamRequest,
        answers: asyncio.Queue[_Queued | None],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.SearchResponse:
        """The fused result; the BM25-only one is queued (marked partial) as soon as ready."""
        query = self._query(request.search)
        loop = asyncio.get_running_loop()
        with self._engine.use(request.search.collection, "search.collection") as collection:

            def on_partial(result: SearchResult) -> None:  # runs on a search thread
                partial = pb.SearchStreamResponse(
                    request_id=request.request_id,
                    response=_answer(result, collection.name),
                    partial=True,
                )
                loop.call_soon_threadsafe(answers.put_nowait, (partial, False))

            engine = collection.searcher
            result = await self._run(context, engine.search_progressive, query, on_partial)
        return _answer(result, collection.name)

    async def Search(  # noqa: N802 (gRPC method name)
        self, request: pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SearchResponse:
        """One query."""
        return await self._search(request, context)

    async def BatchSearch(  # noqa: N802
        self, request: pb.BatchSearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchSearchResponse:
        """Several queries, one encoder run."""
        specs = [request_from_proto(item) for item in request.requests]
        queries = resolve_batch(specs, self._defaults, self._limits)
        # Queries naming one collection run as one engine batch (one encoder run); the
        # answers keep the requests' order.
        answers: list[pb.SearchResponse | None] = [None] * len(queries)
        with contextlib.ExitStack() as held:
            groups: dict[str, tuple[ServedCollection, list[int]]] = {}
            for i, item in enumerate(request.requests):
                collection = held.enter_context(
                    self._engine.use(item.collection, f"requests[{i}].collection")
                )
                groups.setdefault(collection.name, (collection, []))[1].append(i)
            runs = [
                self._run(context, c.searcher.search_batch, [queries[i] for i in positions])
                for c, positions in groups.values()
            ]
            # Every part finishes before the collections are let go (a deletion waits).
            outcomes = await asyncio.gather(*runs, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            for (collection, positions), results in zip(groups.values(), outcomes, strict=True):
                assert not isinstance(results, BaseException)
                for i, result in zip(positions, results, strict=True):
                    answers[i] = _answer(result, collection.name)
        return pb.BatchSearchResponse(responses=[a for a in answers if a is not None])

    async def SearchStream(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.SearchStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.SearchStreamResponse]:
        """Many queries on one stream; each answer is sent as soon as it is ready.

        Once the server's graceful stop begins, the stream reads no more requests: those it
        has are answered, then it ends with UNAVAILABLE (a request read but not begun gets
        no answer, so every request without a final answer may be sent again elsewhere).
        """
        # A request holds a slot until its final answer is sent, not merely queued: a client
        # that sends without reading gets no more than the slots' worth of answers kept here,
        # and the stream reads no further (HTTP/2 flow control then stops the sender).
        answers: asyncio.Queue[_Queued | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self._settings.stream_max_in_flight)
        pending: set[asyncio.Task[None]] = set()
        # The stream counts among the calls in flight only while a request of it is in work.
        place = StreamAdmission(self._admission)

        async def answer(request: pb.SearchStreamRequest) -> None:
            if not place.enter():
                self._admission.stream_requests_refused += 1
                access_log.info(
                    "%s request %s RESOURCE_EXHAUSTED (refused in-band: the server is at capacity)",
                    STREAM_METHOD,
                    echo(request.request_id),
                    extra={"method": STREAM_METHOD, "code": "RESOURCE_EXHAUSTED"},
                )
                answers.put_nowait((_error_response(request.request_id, place.refusal()), True))
                return
            try:
                if request.progressive:
                    response = await self._search_progressive(request, answers, context)
                else:
                    response = await self._search(request.search, context)
                final = pb.SearchStreamResponse(request_id=request.request_id, response=response)
            except Exception as exc:
                final = _error_response(request.request_id, exc)
            finally:
                place.leave()
            answers.put_nowait((final, True))

        async def read_requests() -> None:
            async for request in request_iterator:
                await slots.acquire()  # bounded in-flight work; the client is flow-controlled
                task = asyncio.create_task(answer(request))
                pending.add(task)
                task.add_done_callback(pending.discard)

        async def serve_requests() -> bool:
            """Read and answer requests until the stream ends (False) or the stop begins
            (True)."""
            try:
                cut = await _unless_set(read_requests(), self._stopping)
                while pending:
                    await asyncio.gather(*list(pending))
                return cut
            finally:  # also when reading fails (an undecodable message): end the stream
                await answers.put(None)

        reader = asyncio.create_task(serve_requests())
        try:
            while (item := await answers.get()) is not None:
                response, final = item
                sendable = self._sendable(response, final)
                if sendable is not None:
                    yield sendable
                if final:
                    slots.release()
            if await reader:
                await abort_with(context, UnavailableError(STREAM_STOPPED))
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()

    def _sendable(
        self, response: pb.SearchStreamResponse, final: bool
    ) -> pb.SearchStreamResponse | None:
        """``response``, or what is sent instead when it is over ``--max-message-bytes``: for
        a final answer its request's error (RESOURCE_EXHAUSTED; the stream stays open), and
        nothing for a partial one (its final answer follows)."""
        error = too_large(response, self._settings.max_message_bytes, STREAM_METHOD)
        if error is None:
            return response
        if not final:
            return None
        access_log.info(
            "%s request %s RESOURCE_EXHAUSTED (answered in-band: over --max-message-bytes)",
            STREAM_METHOD,
            echo(response.request_id),
            extra={"method": STREAM_METHOD, "code": "RESOURCE_EXHAUSTED"},
        )
        return _error_response(response.request_id, error)


#: Why a stream ends with UNAVAILABLE when the server stops.
STREAM_STOPPED = (
    "the server is shutting down: this stream takes no more requests; send those that got no "
    "final response again on a new stream"
)


async def _unless_set(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it ends (False) or ``stop`` is set (True: it is cancelled)."""
    working = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({working, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        working.cancel()
        raise
    finally:
        stopped.cancel()
    if working.done():
        working.result()  # its error, if any
        return False
    working.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await working
    return True


#: A stream's answer waiting to be sent, and whether it is its request's final one.
_Queued = tuple[pb.SearchStreamResponse, bool]


def _answer(result: SearchResult, collection: str) -> pb.SearchResponse:
    """A search's response, naming the collection searched (also when asked by alias)."""
    response = result_to_proto(result)
    response.applied.collection = collection
    return response


def _error_response(request_id: str, exc: Exception) -> pb.SearchStreamResponse:
    """The error answer of one stream request: the status a unary call would get."""
    status = call_status(exc)
    error = pb.ErrorStatus(code=status.code.value[0], message=status.message)
    for violation in status.violations:
        error.field_violations.add(field=violation.field, description=violation.description)
    return pb.SearchStreamResponse(request_id=request_id, error=error)
