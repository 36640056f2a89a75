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
from hybridsearch.api.errors import DetailedError
from hybridsearch.config import ServerSettings
from hybridsearch.engine.document_rules import (
    Rejection,
    check_delete_count,
    check_ids,
    document_problem,
    id_problem,
)
from hybridsearch.errors import (
    HybridSearchError,
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
#: How long a stream's next message is awaited once the graceful stop has begun: long enough
#: to take the end of a stream its client has already closed, short of a message's round trip.
STOP_READ_S = 0.1
#: Most bytes of the partial response a failed UpsertDocuments stream carries in its status
#: details (half of a client's default 8 KiB trailer bound, leaving room for the message).
PARTIAL_RESPONSE_BYTES = 4096
#: Bytes a repeated entry adds beyond its own size (its tag and length prefix), at most.
_ENTRY_OVERHEAD_BYTES = 4
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
        stream reads no more messages and ends with UNAVAILABLE, unless it has already ended
        (then it is answered as usual). A stream that fails carries its response so far (how
        many messages were applied, what they rejected) in the status details, so the client
        knows what was done and which messages to send again.
        """
        response = pb.UpsertDocumentsResponse()
        try:
            return await self._upsert(aiter(request_iterator), context, response)
        except HybridSearchError as exc:
            raise DetailedError(exc, [partial_response(response)]) from exc

    async def _upsert(
        self,
        requests: Requests,
        context: grpc.aio.ServicerContext[Any, Any],
        response: pb.UpsertDocumentsResponse,
    ) -> pb.UpsertDocumentsResponse:
        """`UpsertDocuments`, summing up into ``response`` as each message is applied."""
        place = StreamAdmission(self._admission)
        first = await self._next_message(requests, response)
        name = first.collection if first is not None else ""
        with _applying(place, response), self._engine.use(name) as collection:
            ingestor = collection.ingestor()
        # Held only while a batch is written, not while the client's next message is awaited:
        # deleting the collection never waits for an idle stream, whose next batch then gets
        # NOT_FOUND ("collection ... was deleted").
        registry = self._engine.registry
        schema = ingestor.schema
        committed = False
        position = 0
        request = first
        while request is not None:
            with _applying(place, response):
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
            response.applied_messages += 1
            request = await self._next_message(requests, response)
        if not committed:  # nothing written: the generation as it stands
            with _applying(place, response), registry.hold(collection):
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
        self, requests: Requests, response: pb.UpsertDocumentsResponse
    ) -> pb.UpsertDocumentsRequest | None:
        """The stream's next message (None: it ended). Once the graceful stop has begun, only
        the end of a stream that already ended is taken (within `STOP_READ_S`); a further
        message, or none yet, is UNAVAILABLE (that message is not applied)."""
        reading = asyncio.ensure_future(anext(requests, None))
        try:
            if not self._stopping.is_set():
                stopped = asyncio.ensure_future(self._stopping.wait())
                try:
                    await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopped.cancel()
                if not self._stopping.is_set():
                    return reading.result()
            await asyncio.wait({reading}, timeout=STOP_READ_S)
        finally:
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
        if not reading.cancelled() and reading.result() is None:
            return None  # the stream had ended: it is answered as usual
        raise UnavailableError(_stopped(response.applied_messages))

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
            already_compact=not outcome.rewritten,
        )


@contextlib.contextmanager
def _applying(place: StreamAdmission, response: pb.UpsertDocumentsResponse) -> Iterator[None]:
    """Hold the stream's ``place`` among the calls in flight while its next message is
    applied; RESOURCE_EXHAUSTED, the message unapplied, when the server is full."""
    if not place.enter():
        raise OverloadedError(f"{place.refusal()} ({_applied_so_far(response.applied_messages)})")
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


def partial_response(response: pb.UpsertDocumentsResponse) -> pb.UpsertDocumentsResponse:
    """A failed stream's ``response`` so far, as its status detail: `rejected` is cut to the
    first entries that fit in `PARTIAL_RESPONSE_BYTES` (`rejected_count` still counts all),
    since the detail travels in a trailer, which clients bound (8 KiB by default)."""
    partial = pb.UpsertDocumentsResponse()
    partial.CopyFrom(response)
    del partial.rejected[:]
    room = PARTIAL_RESPONSE_BYTES - partial.ByteSize()
    for rejection in response.rejected:
        room -= rejection.ByteSize() + _ENTRY_OVERHEAD_BYTES
        if room < 0:
            break
        partial.rejected.append(rejection)
    return partial


def _add_rejection(response: pb.UpsertDocumentsResponse, rejection: Rejection) -> None:
    response.rejected_count += 1
    response.rejected.add(position=rejection.position, id=rejection.id, reason=rejection.reason)
