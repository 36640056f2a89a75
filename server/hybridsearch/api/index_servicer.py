"""IndexService: live upserts and deletes, document lookup, index statistics, compaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from hybridsearch.api.admission import Admission, StreamAdmission
from hybridsearch.api.convert import (
    document_from_proto,
    document_to_proto,
    stats_to_proto,
)
from hybridsearch.api.deadlines import deadline_of, run_before_deadline, work_context
from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.config import ServerSettings
from hybridsearch.engine.document_rules import (
    Rejection,
    check_delete_count,
    check_ids,
    document_problem,
    id_problem,
)
from hybridsearch.errors import (
    InvalidArgumentError,
    NotFoundError,
    OverloadedError,
    UnavailableError,
    echo,
)
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.types import Document
from hybridsearch.v1 import index_pb2 as pb
from hybridsearch.v1 import index_pb2_grpc

T = TypeVar("T")
Requests = AsyncIterator[pb.UpsertDocumentsRequest]


class IndexServicer(index_pb2_grpc.IndexServiceServicer):
    """Implements hybridsearch.v1.IndexService.

    Writes run on ``write_executor`` (not the search threads), so a long encode or commit
    never delays searches; the writer's lock serialises commits.
    """

    def __init__(
        self,
        engine: EngineSlot,
        settings: ServerSettings,
        write_executor: ThreadPoolExecutor,
        stopping: asyncio.Event | None = None,
        admission: Admission | None = None,
    ) -> None:
        """``stopping``: set when the graceful stop begins; open UpsertDocuments streams then
        read no more messages. ``admission``: the server's in-flight bound, which each message
        of such a stream enters while it is applied (None: no bound)."""
        self._engine = engine
        self._limits = settings.ingest_limits
        self._executor = write_executor
        self._stopping = stopping if stopping is not None else asyncio.Event()
        self._admission = admission if admission is not None else Admission(0)

    async def _run(
        self, context: grpc.aio.ServicerContext[Any, Any], fn: Callable[..., T], *args: Any
    ) -> T:
        """A write on the write threads, with the caller's deadline (`request_deadline`): one
        whose deadline passed while it waited is not started, and a sharded collection's
        replicas are waited for until the deadline only, not `call_timeout_s`."""
        return await run_before_deadline(
            self._executor, context, "before the write started", fn, *args
        )

    @staticmethod
    async def _read(
        context: grpc.aio.ServicerContext[Any, Any], fn: Callable[..., T], *args: Any
    ) -> T:
        """A read off the event loop (not on the write threads), with the caller's deadline."""
        return await asyncio.to_thread(work_context(deadline_of(context)).run, fn, *args)

    async def UpsertDocuments(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[pb.UpsertDocumentsRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.UpsertDocumentsResponse:
        """Commit each message of the stream as one batch; sum up at the end.

        The first message names the collection; a later message naming another one is
        INVALID_ARGUMENT (one left empty keeps the first's). The stream counts among the calls
        in flight only while a message of it is applied: one that finds the server full fails
        the stream with RESOURCE_EXHAUSTED, unapplied. Once the graceful stop begins, the
        stream reads no more messages and ends with UNAVAILABLE. Both errors say how many
        messages were applied (committed), so the client knows which to send again.
        """
        requests = aiter(request_iterator)
        place = StreamAdmission(self._admission)
        applied = 0  # messages of the stream applied so far
        first = await self._next_message(requests, applied)
        name = first.collection if first is not None else ""
        with _applying(place, applied), self._engine.use(name) as collection:
            ingestor = collection.ingestor()
        # Held only while a batch is written, not while the client's next message is awaited:
        # deleting the collection never waits for an idle stream, whose next batch then gets
        # NOT_FOUND ("collection ... was deleted").
        registry = self._engine.registry
        schema = ingestor.schema
        response = pb.UpsertDocumentsResponse()
        committed = False
        position = 0
        request = first
        while request is not None:
            with _applying(place, applied):
                if request.collection and request.collection != name:
                    raise InvalidArgumentError.single(
                        "collection",
                        f"every message of a stream names the first one's collection "
                        f"({echo(name)}; got {echo(request.collection)})",
                    )
                batch = self._valid_documents(request, position, schema, response)
                position += len(request.documents)
                if batch:
                    with registry.hold(collection):
                        outcome = await self._run(context, ingestor.upsert, batch)
                    response.accepted_count += outcome.accepted
                    response.replaced_count += outcome.replaced
                    response.generation = outcome.generation
                    committed = True
            applied += 1
            request = await self._next_message(requests, applied)
        if not committed:  # nothing written: the generation as it stands
            with _applying(place, applied), registry.hold(collection):
                manifest = await self._read(context, lambda: ingestor.manifest)
            response.generation = manifest.generation
        return response

    def _valid_documents(
        self,
        request: pb.UpsertDocumentsRequest,
        position: int,
        schema: CollectionSchema,
        response: pb.UpsertDocumentsResponse,
    ) -> list[Document]:
        """The message's valid documents; the others are added to ``response``'s rejections
        (``position``: the stream position of the message's first document)."""
        batch: list[Document] = []
        for offset, message in enumerate(request.documents):
            try:
                doc = document_from_proto(message)
            except InvalidArgumentError as exc:  # metadata JSON cannot hold
                _add_rejection(response, Rejection(position + offset, message.id, str(exc)))
                continue
            problem = document_problem(doc, self._limits, schema)
            if problem is None:
                batch.append(doc)
            else:
                _add_rejection(response, Rejection(position + offset, doc.id, problem))
        return batch

    async def _next_message(
        self, requests: Requests, applied: int
    ) -> pb.UpsertDocumentsRequest | None:
        """The stream's next message (None: it ended); UNAVAILABLE instead once the graceful
        stop has begun (a message not read then is not applied)."""
        if self._stopping.is_set():
            raise UnavailableError(_stopped(applied))
        reading = asyncio.ensure_future(anext(requests, None))
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            reading.cancel()
            raise
        finally:
            stopped.cancel()
        if reading.done():
            return reading.result()
        reading.cancel()  # the stop began first: what the read would have got is not applied
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        raise UnavailableError(_stopped(applied))

    async def DeleteDocuments(  # noqa: N802
        self, request: pb.DeleteDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteDocumentsResponse:
        """Delete by ids in one commit."""
        check_delete_count(len(request.ids), self._limits)
        check_ids(request.ids, self._limits)
        with self._engine.use(request.collection) as collection:
            outcome = await self._run(context, collection.ingestor().delete, list(request.ids))
        return pb.DeleteDocumentsResponse(
            deleted_count=len(outcome.deleted),
            not_found_ids=outcome.not_found,
            generation=outcome.generation,
        )

    async def GetDocument(  # noqa: N802
        self, request: pb.GetDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetDocumentResponse:
        """One live document's stored fields."""
        problem = id_problem(request.id, self._limits)
        if problem is not None:
            raise InvalidArgumentError.single("id", problem)
        with self._engine.use(request.collection) as collection:
            # Reads stay off the write threads: a long upsert never delays them.
            stored = await self._read(context, collection.searcher.document, request.id)
        if stored is None:
            raise NotFoundError(f"no document with id {echo(request.id)}")
        return pb.GetDocumentResponse(document=document_to_proto(stored))

    async def GetIndexStats(  # noqa: N802
        self, request: pb.GetIndexStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetIndexStatsResponse:
        """Statistics of the collection's index as of its last commit."""
        with self._engine.use(request.collection) as collection:
            # Off the event loop: a sharded collection asks each of its shards.
            index = await self._read(context, lambda: collection.searcher.index)
            size_bytes = await self._read(context, lambda: index.size_bytes)
            encoder = collection.searcher.encoder
            return stats_to_proto(
                index.manifest,
                size_bytes=size_bytes,
                provider=encoder.provider if encoder is not None else "",
                writable=collection.writable,
            )

    async def Compact(  # noqa: N802
        self, request: pb.CompactRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CompactResponse:
        """Compact now; returns once the compacted generation is durable and served."""
        with self._engine.use(request.collection) as collection:
            outcome = await self._run(context, collection.ingestor().compact)
        return pb.CompactResponse(
            generation=outcome.generation,
            removed_count=outcome.removed_rows,
            document_count=outcome.documents,
            size_bytes_before=outcome.size_bytes_before,
            size_bytes_after=outcome.size_bytes_after,
            duration_ms=round(outcome.seconds * 1000),
        )


@contextlib.contextmanager
def _applying(place: StreamAdmission, applied: int) -> Iterator[None]:
    """Hold the stream's ``place`` among the calls in flight while its next message is
    applied; RESOURCE_EXHAUSTED, the message unapplied, when the server is full."""
    if not place.enter():
        raise OverloadedError(f"{place.refusal()} ({_applied_so_far(applied)})")
    try:
        yield
    finally:
        place.leave()


def _applied_so_far(applied: int) -> str:
    return (
        f"the first {applied} message(s) of this stream were applied, the rest were not: "
        f"send those again on a new stream"
    )


def _stopped(applied: int) -> str:
    """Why an UpsertDocuments stream ends with UNAVAILABLE at the graceful stop."""
    return f"the server is shutting down: {_applied_so_far(applied)} (to another server)"


def _add_rejection(response: pb.UpsertDocumentsResponse, rejection: Rejection) -> None:
    response.rejected_count += 1
    response.rejected.add(position=rejection.position, id=rejection.id, reason=rejection.reason)
