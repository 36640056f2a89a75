"""CollectionService: create, list, describe and delete collections; update aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from hybridsearch.api.collection_convert import (
    DENSE_FROM_PROTO,
    alias_actions_from_proto,
    description_to_proto,
    schema_from_proto,
)
from hybridsearch.api.deadlines import deadline_of, run_before_deadline, work_context
from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.v1 import collection_pb2 as pb
from hybridsearch.v1 import collection_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


class CollectionServicer(collection_pb2_grpc.CollectionServiceServicer):
    """Implements hybridsearch.v1.CollectionService.

    Changes run on ``change_executor`` (building an index and fsyncs take a while; a
    deletion waits for the calls running on the collection), never on the event loop nor on
    the write threads, so a deletion that waits never holds up IndexService writes.
    """

    def __init__(self, engine: EngineSlot, change_executor: ThreadPoolExecutor) -> None:
        self._engine = engine
        self._executor = change_executor

    async def _change(self, context: Context, fn: Callable[..., T], *args: Any) -> T:
        """A change on the change threads, with the caller's deadline: one whose deadline
        passed while it waited (for a thread, or for the change before it) is not applied,
        so DEADLINE_EXCEEDED means "not applied" unless the change had already started."""
        return await run_before_deadline(
            self._executor, context, "before the change started; it was not applied", fn, *args
        )

    async def CreateCollection(  # noqa: N802 (gRPC method name)
        self, request: pb.CreateCollectionRequest, context: Context
    ) -> pb.CreateCollectionResponse:
        """Create an empty collection."""
        schema = schema_from_proto(request.schema)
        dense_index = DENSE_FROM_PROTO.get(request.dense_index)
        if dense_index is None:
            raise InvalidArgumentError.single(
                "dense_index", "must be DENSE_INDEX_KIND_EXACT or DENSE_INDEX_KIND_HNSW"
            )
        registry = self._engine.registry
        description = await self._change(
            context,
            lambda: registry.create(
                request.name,
                schema=schema,
                model=request.model,
                dense_index=dense_index,
                shards=request.shards,
            ),
        )
        return pb.CreateCollectionResponse(collection=description_to_proto(description))

    async def ListCollections(  # noqa: N802
        self, request: pb.ListCollectionsRequest, context: Context
    ) -> pb.ListCollectionsResponse:
        """Every collection, in name order."""
        work = work_context(deadline_of(context))  # a sharded one's shards: until then
        descriptions = await asyncio.to_thread(work.run, self._engine.registry.describe_all)
        return pb.ListCollectionsResponse(
            collections=[description_to_proto(d) for d in descriptions]
        )

    async def GetCollection(  # noqa: N802
        self, request: pb.GetCollectionRequest, context: Context
    ) -> pb.GetCollectionResponse:
        """One collection, by name or alias."""
        work = work_context(deadline_of(context))
        registry = self._engine.registry
        description = await asyncio.to_thread(work.run, registry.describe, request.name)
        return pb.GetCollectionResponse(collection=description_to_proto(description))

    async def DeleteCollection(  # noqa: N802
        self, request: pb.DeleteCollectionRequest, context: Context
    ) -> pb.DeleteCollectionResponse:
        """Delete a collection and its aliases, once the searches running on it finish."""
        registry = self._engine.registry
        removed = await self._change(context, registry.delete, request.name)
        return pb.DeleteCollectionResponse(removed_aliases=removed)

    async def UpdateAliases(  # noqa: N802
        self, request: pb.UpdateAliasesRequest, context: Context
    ) -> pb.UpdateAliasesResponse:
        """Apply alias actions atomically."""
        actions = alias_actions_from_proto(request)
        registry = self._engine.registry
        aliases = await self._change(context, registry.update_aliases, actions)
        return pb.UpdateAliasesResponse(aliases=aliases)
