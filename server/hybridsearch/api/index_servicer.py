"""IndexService: live upserts and deletes, document lookup, index statistics, compaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from hybridsearch.api.convert import (
    document_from_proto,
    document_to_proto,
    stats_to_proto,
)
from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.config import ServerSettings
from hybridsearch.engine.document_rules import (
    Rejection,
    check_delete_count,
    check_ids,
    document_problem,
    id_problem,
)
from hybridsearch.errors import InvalidArgumentError, NotFoundError, echo
from hybridsearch.types import Document
from hybridsearch.v1 import index_pb2 as pb
from hybridsearch.v1 import index_pb2_grpc

T = TypeVar("T")


class IndexServicer(index_pb2_grpc.IndexServiceServicer):
    """Implements hybridsearch.v1.IndexService.

    Writes run on ``write_executor`` (not the search threads), so a long encode or commit
    never delays searches; the writer's lock serialises commits.
    """

    def __init__(
        self, engine: EngineSlot, settings: ServerSettings, write_executor: ThreadPoolExecutor
    ) -> None:
        self._engine = engine
        self._limits = settings.ingest_limits
        self._executor = write_executor

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def UpsertDocuments(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[pb.UpsertDocumentsRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.UpsertDocumentsResponse:
        """Commit each message of the stream as one batch; sum up at the end."""
        ingestor = self._engine.get_ingestor()
        response = pb.UpsertDocumentsResponse(generation=ingestor.writer.manifest.generation)
        position = 0
        async for request in request_iterator:
            batch: list[Document] = []
            for message in request.documents:
                doc = document_from_proto(message)
                problem = document_problem(doc, self._limits, ingestor.writer.manifest.schema)
                if problem is None:
                    batch.append(doc)
                else:
                    _add_rejection(response, Rejection(position, doc.id, problem))
                position += 1
            if batch:
                outcome = await self._run(ingestor.upsert, batch)
                response.accepted_count += outcome.accepted
                response.replaced_count += outcome.replaced
                response.generation = outcome.generation
        return response

    async def DeleteDocuments(  # noqa: N802
        self, request: pb.DeleteDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteDocumentsResponse:
        """Delete by ids in one commit."""
        check_delete_count(len(request.ids), self._limits)
        check_ids(request.ids, self._limits)
        ingestor = self._engine.get_ingestor()
        outcome = await self._run(ingestor.delete, list(request.ids))
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
        engine = self._engine.get()
        # Reads stay off the write threads: a long upsert never delays them.
        stored = await asyncio.to_thread(engine.document, request.id)
        if stored is None:
            raise NotFoundError(f"no document with id {echo(request.id)}")
        return pb.GetDocumentResponse(document=document_to_proto(stored))

    async def GetIndexStats(  # noqa: N802
        self, request: pb.GetIndexStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetIndexStatsResponse:
        """Statistics of the index as of its last commit."""
        engine = self._engine.get()
        index = engine.index
        size_bytes = await asyncio.to_thread(lambda: index.size_bytes)
        encoder = engine.encoder
        return stats_to_proto(
            index.manifest,
            size_bytes=size_bytes,
            provider=encoder.provider if encoder is not None else "",
            writable=self._engine.writable,
        )

    async def Compact(  # noqa: N802
        self, request: pb.CompactRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CompactResponse:
        """Compact now; returns once the compacted generation is durable and served."""
        ingestor = self._engine.get_ingestor()
        outcome = await self._run(ingestor.compact)
        return pb.CompactResponse(
            generation=outcome.generation,
            removed_count=outcome.removed_rows,
            document_count=outcome.documents,
            size_bytes_before=outcome.size_bytes_before,
            size_bytes_after=outcome.size_bytes_after,
            duration_ms=round(outcome.seconds * 1000),
        )


def _add_rejection(response: pb.UpsertDocumentsResponse, rejection: Rejection) -> None:
    response.rejected_count += 1
    response.rejected.add(position=rejection.position, id=rejection.id, reason=rejection.reason)
