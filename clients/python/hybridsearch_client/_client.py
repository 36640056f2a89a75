"""Typed wrappers over the generated SearchService, IndexService and CollectionService stubs:
``HybridSearchClient`` (blocking) and ``AsyncHybridSearchClient`` (asyncio)."""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc
import grpc.aio

from hybridsearch_client._collections import (
    AddAlias,
    AliasActionLike,
    DenseIndex,
    RemoveAlias,
    SchemaLike,
    build_create_request,
    build_update_aliases_request,
)
from hybridsearch_client._documents import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_BYTES,
    UpsertBatcher,
    UpsertItem,
)
from hybridsearch_client._errors import (
    HybridSearchError,
    error_from_rpc_error,
    error_from_stream_status,
)
from hybridsearch_client._gen.hybridsearch.v1 import (
    collection_pb2,
    collection_pb2_grpc,
    index_pb2,
    index_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from hybridsearch_client._requests import (
    QueryLike,
    TlsConfig,
    build_search_request,
    call_metadata,
)
from hybridsearch_client._stream_writes import with_stream_writes

DEFAULT_TIMEOUT_S = 10.0
MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024
"""Default largest reply the client accepts (gRPC's own default is 4 MiB); the server's
``--max-message-bytes`` default is 16 MiB. Override it with
``channel_options=[("grpc.max_receive_message_length", n)]`` (-1: no limit)."""


def _channel_options(channel_options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    options = list(channel_options)
    if not any(key == "grpc.max_receive_message_length" for key, _ in options):
        options.append(("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES))
    return options


@dataclass(frozen=True, slots=True)
class StreamResult:
    """One answer on a ``SearchStream``: exactly one of ``response`` and ``error`` is set.
    ``partial`` is true for the early sparse-only answer of a ``progressive`` request; the
    final answer for the same ``request_id`` follows with ``partial`` false."""

    request_id: str
    response: search_pb2.SearchResponse | None
    error: HybridSearchError | None
    partial: bool = False

    @classmethod
    def from_proto(cls, message: search_pb2.SearchStreamResponse) -> StreamResult:
        if message.HasField("error"):
            return cls(message.request_id, None, error_from_stream_status(message.error))
        return cls(message.request_id, message.response, None, message.partial)


def _stream_request(
    item: search_pb2.SearchStreamRequest | tuple[str, QueryLike], options: dict[str, Any]
) -> search_pb2.SearchStreamRequest:
    if isinstance(item, search_pb2.SearchStreamRequest):
        return item
    request_id, query = item
    return search_pb2.SearchStreamRequest(
        request_id=request_id, search=build_search_request(query, **options)
    )


StreamItem = search_pb2.SearchStreamRequest | tuple[str, QueryLike]
"""A stream request, or a ``(request_id, query)`` pair."""


def _delete_request(ids: Iterable[str], collection: str) -> index_pb2.DeleteDocumentsRequest:
    if isinstance(ids, str):
        raise TypeError("ids must be a collection of ids, not one string: pass [id]")
    return index_pb2.DeleteDocumentsRequest(ids=list(ids), collection=collection)


class _SourceFailure:
    """Remembers an exception raised by the caller's documents or requests while they were
    consumed, so the caller sees that exception rather than the CANCELLED call it caused."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


def _cancel(task: asyncio.Future[None]) -> None:
    task.cancel()


async def _send_stream_requests(
    call: grpc.aio.StreamStreamCall[
        search_pb2.SearchStreamRequest, search_pb2.SearchStreamResponse
    ],
    requests: Iterable[StreamItem] | AsyncIterable[StreamItem],
    options: dict[str, Any],
    failure: _SourceFailure,
) -> None:
    """Write ``requests`` on a grpc.aio SearchStream call, then half-close it. Once the call
    has ended, the reader of its responses reports how; a failure of ``requests`` is kept in
    ``failure`` and cancels the call."""
    try:
        if isinstance(requests, AsyncIterable):
            async for item in requests:
                await call.write(_stream_request(item, options))
        else:
            for item in requests:
                await call.write(_stream_request(item, options))
        await call.done_writing()
    except (grpc.RpcError, asyncio.InvalidStateError):
        return  # the call has ended
    except Exception as error:
        failure.error = error
        call.cancel()


class HybridSearchClient:
    """Blocking client. ``timeout`` (seconds) is the default deadline of every call; each
    method takes its own ``timeout`` too. Without ``tls`` the channel is plaintext.
    ``bearer_token`` is sent as ``authorization: Bearer ...`` on every call; ``interceptors``
    are ``grpc`` client interceptors wrapped around the channel.

    >>> with HybridSearchClient("127.0.0.1:50051") as client:
    ...     hits = client.search("what is bm25", top_k=5).hits
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        tls: TlsConfig | None = None,
        bearer_token: str | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[Any] = (),
    ) -> None:
        options = _channel_options(channel_options)
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            options += tls.channel_options()
            self._channel = grpc.secure_channel(target, tls.credentials(), options=options)
        if interceptors:
            self._channel = grpc.intercept_channel(self._channel, *interceptors)
        self._stub = search_pb2_grpc.SearchServiceStub(self._channel)
        self._index = index_pb2_grpc.IndexServiceStub(self._channel)
        self._collections = collection_pb2_grpc.CollectionServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = call_metadata(bearer_token)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    def search(
        self, query: QueryLike, *, timeout: float | None = None, **options: Any
    ) -> search_pb2.SearchResponse:
        """Run one query. ``options`` are ``top_k``, ``mode``, ``fusion``, ``explain``,
        ``return_fields``, ``collection`` (name or alias; empty: the default collection),
        ``filter`` (a :mod:`~hybridsearch_client.filters` condition or a ``Filter`` message),
        ``offset`` (hits to skip), ``highlight`` and ``highlight_max_chars`` (see
        :func:`build_search_request`); they are ignored when ``query`` is already a
        ``SearchRequest``."""
        request = build_search_request(query, **options)
        try:
            response: search_pb2.SearchResponse = self._stub.Search(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    def batch_search(
        self, queries: Sequence[QueryLike], *, timeout: float | None = None, **options: Any
    ) -> list[search_pb2.SearchResponse]:
        """Run several queries in one call; responses come back in request order. ``options``
        (as for :meth:`search`, ``collection`` and ``filter`` included) apply to every text
        query."""
        request = search_pb2.BatchSearchRequest(
            requests=[build_search_request(q, **options) for q in queries]
        )
        try:
            response = self._stub.BatchSearch(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        return list(response.responses)

    def search_stream(
        self, requests: Iterable[StreamItem], *, timeout: float | None = None, **options: Any
    ) -> Generator[StreamResult, None, None]:
        """Send many queries on one stream; yields answers as they arrive (any order).
        A per-request error is a ``StreamResult.error``; a failed stream raises. ``options``
        (as for :meth:`search`, ``collection`` and ``filter`` included) apply to every
        ``(request_id, text)`` pair.

        Leaving the loop early does not end the call by itself: the returned generator keeps
        the stream (and pulls ``requests``) until it is closed or collected. Call
        ``results.close()`` (or iterate inside ``contextlib.closing(...)``) to cancel it."""
        call = self._stub.SearchStream(
            (_stream_request(item, options) for item in requests),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        try:
            for message in call:
                yield StreamResult.from_proto(message)
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        finally:
            call.cancel()

    # IndexService

    def upsert_documents(
        self,
        documents: Iterable[UpsertItem],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        collection: str = "",
        timeout: float | None = None,
    ) -> index_pb2.UpsertDocumentsResponse:
        """Stream ``documents`` (``Document`` dataclasses or generated ``Document`` messages,
        consumed lazily) to the server in ``UpsertDocumentsRequest`` batches of at most
        ``batch_size`` documents / ``max_batch_bytes`` bytes; a ready ``UpsertDocumentsRequest``
        in the iterable is sent as one batch of its own. Each batch is committed atomically;
        the response sums them: ``accepted_count``, ``replaced_count``, ``rejected_count``,
        ``rejected`` (position, id, reason) and the final ``generation``. If the call fails
        midway, the batches committed before stay committed: the raised error's
        ``partial_upsert`` says how many (``applied_messages``) and what they rejected. An
        exception raised by ``documents`` cancels the call and propagates unchanged.
        ``collection`` names the collection or alias written (empty: the default
        collection)."""
        batcher = UpsertBatcher(batch_size, max_batch_bytes, collection)
        failure = _SourceFailure()

        def requests() -> Iterator[index_pb2.UpsertDocumentsRequest]:
            try:
                for item in documents:
                    yield from batcher.add(item)
                yield from batcher.flush()
            except Exception as error:
                failure.error = error
                raise

        try:
            response: index_pb2.UpsertDocumentsResponse = self._index.UpsertDocuments(
                requests(), timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            failure.reraise()
            raise error_from_rpc_error(error) from None

    def delete_documents(
        self, ids: Iterable[str], *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.DeleteDocumentsResponse:
        """Delete documents by id in one commit: ``deleted_count``, ``not_found_ids`` and the
        ``generation`` after the commit."""
        request = _delete_request(ids, collection)
        try:
            response: index_pb2.DeleteDocumentsResponse = self._index.DeleteDocuments(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    def get_document(
        self, document_id: str, *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.Document:
        """The stored fields of one document; ``HybridSearchError`` with code ``NOT_FOUND``
        when no live document has this id."""
        request = index_pb2.GetDocumentRequest(id=document_id, collection=collection)
        try:
            response: index_pb2.GetDocumentResponse = self._index.GetDocument(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        return response.document

    def get_index_stats(
        self, *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.GetIndexStatsResponse:
        """Statistics of the served index as of its last commit (document count, generation,
        vectors, size, writability...)."""
        try:
            response: index_pb2.GetIndexStatsResponse = self._index.GetIndexStats(
                index_pb2.GetIndexStatsRequest(collection=collection),
                timeout=self._deadline(timeout),
                metadata=self._metadata,
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    def compact(
        self, *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.CompactResponse:
        """Rewrite the collection's index without its dead rows now (one atomic commit);
        returns the generation, rows removed and sizes before and after."""
        response: index_pb2.CompactResponse = self._unary(
            self._index.Compact, index_pb2.CompactRequest(collection=collection), timeout
        )
        return response

    # CollectionService

    def create_collection(
        self,
        name: str,
        *,
        schema: SchemaLike = None,
        model: str | None = None,
        dense_index: DenseIndex | collection_pb2.DenseIndexKind.ValueType | None = None,
        shards: int | None = None,
        timeout: float | None = None,
    ) -> collection_pb2.CollectionInfo:
        """Create an empty collection. ``schema`` lists its filterable metadata fields
        (:class:`SchemaField` values or a ``CollectionSchema``); ``model`` names the encoder
        (``"default"``: the server's model; None: BM25-only); ``dense_index`` is ``"exact"``
        or ``"hnsw"`` (ignored for BM25-only); ``shards`` N in [1, 1024] spreads its documents
        over N shards by a hash of their ids, fixed for its life (None or 0: one index
        directory). ``ALREADY_EXISTS`` when the name is taken."""
        request = build_create_request(name, schema, model, dense_index, shards)
        response: collection_pb2.CreateCollectionResponse = self._unary(
            self._collections.CreateCollection, request, timeout
        )
        return response.collection

    def list_collections(
        self, *, timeout: float | None = None
    ) -> list[collection_pb2.CollectionInfo]:
        """Every collection of the server, in name order."""
        response: collection_pb2.ListCollectionsResponse = self._unary(
            self._collections.ListCollections, collection_pb2.ListCollectionsRequest(), timeout
        )
        return list(response.collections)

    def get_collection(
        self, name: str = "", *, timeout: float | None = None
    ) -> collection_pb2.CollectionInfo:
        """One collection by name or alias (empty: the default one); ``NOT_FOUND`` when
        unknown. The info carries its own name, also when asked by alias."""
        response: collection_pb2.GetCollectionResponse = self._unary(
            self._collections.GetCollection, collection_pb2.GetCollectionRequest(name=name), timeout
        )
        return response.collection

    def delete_collection(self, name: str, *, timeout: float | None = None) -> list[str]:
        """Delete a collection by its own name (not an alias) and its aliases; returns the
        aliases removed. ``NOT_FOUND`` when unknown, ``FAILED_PRECONDITION`` for the default."""
        response: collection_pb2.DeleteCollectionResponse = self._unary(
            self._collections.DeleteCollection,
            collection_pb2.DeleteCollectionRequest(name=name),
            timeout,
        )
        return list(response.removed_aliases)

    def update_aliases(
        self, actions: Iterable[AliasActionLike], *, timeout: float | None = None
    ) -> dict[str, str]:
        """Apply :class:`AddAlias` / :class:`RemoveAlias` actions in order and atomically
        (every search sees all of them or none; one invalid action applies none). Returns
        every alias of the server after the update, alias -> collection."""
        response: collection_pb2.UpdateAliasesResponse = self._unary(
            self._collections.UpdateAliases, build_update_aliases_request(actions), timeout
        )
        return dict(response.aliases)

    def set_alias(
        self, alias: str, collection: str, *, timeout: float | None = None
    ) -> dict[str, str]:
        """Point ``alias`` at ``collection`` (create or move it); one-action
        :meth:`update_aliases`."""
        return self.update_aliases([AddAlias(alias, collection)], timeout=timeout)

    def remove_alias(self, alias: str, *, timeout: float | None = None) -> dict[str, str]:
        """Delete ``alias``; one-action :meth:`update_aliases`."""
        return self.update_aliases([RemoveAlias(alias)], timeout=timeout)

    def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, timeout=self._deadline(timeout), metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncHybridSearchClient:
    """asyncio client with the same surface as :class:`HybridSearchClient`; create it inside
    the running event loop."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        tls: TlsConfig | None = None,
        bearer_token: str | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        options = _channel_options(channel_options)
        chain = with_stream_writes(interceptors)
        if tls is None:
            self._channel = grpc.aio.insecure_channel(target, options=options, interceptors=chain)
        else:
            options += tls.channel_options()
            self._channel = grpc.aio.secure_channel(
                target, tls.credentials(), options=options, interceptors=chain
            )
        self._stub = search_pb2_grpc.SearchServiceStub(self._channel)
        self._index = index_pb2_grpc.IndexServiceStub(self._channel)
        self._collections = collection_pb2_grpc.CollectionServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = call_metadata(bearer_token)

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    async def search(
        self, query: QueryLike, *, timeout: float | None = None, **options: Any
    ) -> search_pb2.SearchResponse:
        """Run one query (see :meth:`HybridSearchClient.search`)."""
        request = build_search_request(query, **options)
        try:
            response: search_pb2.SearchResponse = await self._stub.Search(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    async def batch_search(
        self, queries: Sequence[QueryLike], *, timeout: float | None = None, **options: Any
    ) -> list[search_pb2.SearchResponse]:
        """Run several queries in one call; responses come back in request order. ``options``
        (as for :meth:`search`, ``collection`` and ``filter`` included) apply to every text
        query."""
        request = search_pb2.BatchSearchRequest(
            requests=[build_search_request(q, **options) for q in queries]
        )
        try:
            response: search_pb2.BatchSearchResponse = await self._stub.BatchSearch(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        return list(response.responses)

    async def search_stream(
        self,
        requests: Iterable[StreamItem] | AsyncIterable[StreamItem],
        *,
        timeout: float | None = None,
        **options: Any,
    ) -> AsyncGenerator[StreamResult, None]:
        """Send many queries on one stream; yields answers as they arrive (any order);
        ``options`` apply to every ``(request_id, text)`` pair. To stop early, call
        ``await results.aclose()`` (or use ``contextlib.aclosing``): it cancels the call.
        An exception raised by ``requests`` (or by a bad item in it) cancels the call and is
        raised here."""
        call = self._stub.SearchStream(timeout=self._deadline(timeout), metadata=self._metadata)
        failure = _SourceFailure()
        writer = asyncio.ensure_future(_send_stream_requests(call, requests, options, failure))
        # The writer stops reading ``requests`` as the call ends. (The requests reach the server
        # through the client's innermost interceptor, which writes them so that a stop keeps the
        # server's status: see _stream_writes.)
        call.add_done_callback(lambda _call: _cancel(writer))
        try:
            async for message in call:
                yield StreamResult.from_proto(message)
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        except asyncio.CancelledError:
            failure.reraise()  # the writer cancelled the call because ``requests`` failed
            raise
        finally:
            call.cancel()
            writer.cancel()
            await asyncio.wait([writer])  # ``requests`` is closed before this returns

    # IndexService

    async def upsert_documents(
        self,
        documents: Iterable[UpsertItem] | AsyncIterable[UpsertItem],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        collection: str = "",
        timeout: float | None = None,
    ) -> index_pb2.UpsertDocumentsResponse:
        """Stream documents in batches (see :meth:`HybridSearchClient.upsert_documents`);
        ``documents`` may be an async iterable."""
        batcher = UpsertBatcher(batch_size, max_batch_bytes, collection)
        failure = _SourceFailure()

        async def requests() -> AsyncIterator[index_pb2.UpsertDocumentsRequest]:
            try:
                if isinstance(documents, AsyncIterable):
                    async for item in documents:
                        for request in batcher.add(item):
                            yield request
                else:
                    for item in documents:
                        for request in batcher.add(item):
                            yield request
                for request in batcher.flush():
                    yield request
            except Exception as error:
                failure.error = error
                raise

        try:
            response: index_pb2.UpsertDocumentsResponse = await self._index.UpsertDocuments(
                requests(), timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            failure.reraise()
            raise error_from_rpc_error(error) from None
        except asyncio.CancelledError:
            # The call the client cancelled because ``documents`` failed ends so (grpc.aio);
            # the caller sees that failure. A cancellation of the caller's own task has none.
            failure.reraise()
            raise

    async def delete_documents(
        self, ids: Iterable[str], *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.DeleteDocumentsResponse:
        """Delete documents by id in one commit."""
        request = _delete_request(ids, collection)
        try:
            response: index_pb2.DeleteDocumentsResponse = await self._index.DeleteDocuments(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    async def get_document(
        self, document_id: str, *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.Document:
        """The stored fields of one document; ``NOT_FOUND`` when absent."""
        request = index_pb2.GetDocumentRequest(id=document_id, collection=collection)
        try:
            response: index_pb2.GetDocumentResponse = await self._index.GetDocument(
                request, timeout=self._deadline(timeout), metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None
        return response.document

    async def get_index_stats(
        self, *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.GetIndexStatsResponse:
        """Statistics of the served index as of its last commit."""
        try:
            response: index_pb2.GetIndexStatsResponse = await self._index.GetIndexStats(
                index_pb2.GetIndexStatsRequest(collection=collection),
                timeout=self._deadline(timeout),
                metadata=self._metadata,
            )
            return response
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    async def compact(
        self, *, collection: str = "", timeout: float | None = None
    ) -> index_pb2.CompactResponse:
        """Rewrite the collection's index without its dead rows now (one atomic commit);
        returns the generation, rows removed and sizes before and after."""
        response: index_pb2.CompactResponse = await self._unary(
            self._index.Compact, index_pb2.CompactRequest(collection=collection), timeout
        )
        return response

    # CollectionService

    async def create_collection(
        self,
        name: str,
        *,
        schema: SchemaLike = None,
        model: str | None = None,
        dense_index: DenseIndex | collection_pb2.DenseIndexKind.ValueType | None = None,
        shards: int | None = None,
        timeout: float | None = None,
    ) -> collection_pb2.CollectionInfo:
        """Create an empty collection. ``schema`` lists its filterable metadata fields
        (:class:`SchemaField` values or a ``CollectionSchema``); ``model`` names the encoder
        (``"default"``: the server's model; None: BM25-only); ``dense_index`` is ``"exact"``
        or ``"hnsw"`` (ignored for BM25-only); ``shards`` N in [1, 1024] spreads its documents
        over N shards by a hash of their ids, fixed for its life (None or 0: one index
        directory). ``ALREADY_EXISTS`` when the name is taken."""
        request = build_create_request(name, schema, model, dense_index, shards)
        response: collection_pb2.CreateCollectionResponse = await self._unary(
            self._collections.CreateCollection, request, timeout
        )
        return response.collection

    async def list_collections(
        self, *, timeout: float | None = None
    ) -> list[collection_pb2.CollectionInfo]:
        """Every collection of the server, in name order."""
        response: collection_pb2.ListCollectionsResponse = await self._unary(
            self._collections.ListCollections, collection_pb2.ListCollectionsRequest(), timeout
        )
        return list(response.collections)

    async def get_collection(
        self, name: str = "", *, timeout: float | None = None
    ) -> collection_pb2.CollectionInfo:
        """One collection by name or alias (empty: the default one); ``NOT_FOUND`` when
        unknown. The info carries its own name, also when asked by alias."""
        response: collection_pb2.GetCollectionResponse = await self._unary(
            self._collections.GetCollection, collection_pb2.GetCollectionRequest(name=name), timeout
        )
        return response.collection

    async def delete_collection(self, name: str, *, timeout: float | None = None) -> list[str]:
        """Delete a collection by its own name (not an alias) and its aliases; returns the
        aliases removed. ``NOT_FOUND`` when unknown, ``FAILED_PRECONDITION`` for the default."""
        response: collection_pb2.DeleteCollectionResponse = await self._unary(
            self._collections.DeleteCollection,
            collection_pb2.DeleteCollectionRequest(name=name),
            timeout,
        )
        return list(response.removed_aliases)

    async def update_aliases(
        self, actions: Iterable[AliasActionLike], *, timeout: float | None = None
    ) -> dict[str, str]:
        """Apply :class:`AddAlias` / :class:`RemoveAlias` actions in order and atomically
        (every search sees all of them or none; one invalid action applies none). Returns
        every alias of the server after the update, alias -> collection."""
        response: collection_pb2.UpdateAliasesResponse = await self._unary(
            self._collections.UpdateAliases, build_update_aliases_request(actions), timeout
        )
        return dict(response.aliases)

    async def set_alias(
        self, alias: str, collection: str, *, timeout: float | None = None
    ) -> dict[str, str]:
        """Point ``alias`` at ``collection`` (create or move it); one-action
        :meth:`update_aliases`."""
        return await self.update_aliases([AddAlias(alias, collection)], timeout=timeout)

    async def remove_alias(self, alias: str, *, timeout: float | None = None) -> dict[str, str]:
        """Delete ``alias``; one-action :meth:`update_aliases`."""
        return await self.update_aliases([RemoveAlias(alias)], timeout=timeout)

    async def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, timeout=self._deadline(timeout), metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc_error(error) from None

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
