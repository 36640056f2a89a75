"""Against a live server (HYBRIDSEARCH_ADDR): search, batch, stream, errors, deadlines, and the
IndexService calls (upsert, get, stats, delete)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from conftest import OTHER_QUERY, QUERY

from hybridsearch_client import (
    AsyncHybridSearchClient,
    Document,
    HybridSearchClient,
    HybridSearchError,
    index_pb,
    pb,
)

SPARSE = pb.RETRIEVAL_MODE_SPARSE


def _assert_ranked(response: pb.SearchResponse, top_k: int) -> None:
    assert 0 < len(response.hits) <= top_k
    assert [h.rank for h in response.hits] == list(range(1, len(response.hits) + 1))
    scores = [h.score for h in response.hits]
    assert scores == sorted(scores, reverse=True)
    assert response.applied.mode == SPARSE
    assert response.applied.top_k == top_k


def test_search(client: HybridSearchClient) -> None:
    response = client.search(QUERY, top_k=3, mode=SPARSE)
    _assert_ranked(response, 3)


def test_search_accepts_request_message(client: HybridSearchClient) -> None:
    request = pb.SearchRequest(query=QUERY, top_k=2, mode=SPARSE)
    _assert_ranked(client.search(request), 2)


def test_batch_search_keeps_request_order(client: HybridSearchClient) -> None:
    responses = client.batch_search([QUERY, OTHER_QUERY], top_k=5, mode=SPARSE)
    assert len(responses) == 2
    for query, response in zip([QUERY, OTHER_QUERY], responses, strict=True):
        single = client.search(query, top_k=5, mode=SPARSE)
        assert [h.id for h in response.hits] == [h.id for h in single.hits]


def test_batch_search_names_the_bad_request(client: HybridSearchClient) -> None:
    with pytest.raises(HybridSearchError) as info:
        client.batch_search([QUERY, "   "], mode=SPARSE)
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in info.value.field_violations] == ["requests[1].query"]


def test_stream_answers_every_id_and_reports_errors_in_band(client: HybridSearchClient) -> None:
    requests = [
        ("a", pb.SearchRequest(query=QUERY, top_k=3, mode=SPARSE)),
        ("bad", pb.SearchRequest(query="", mode=SPARSE)),
        ("b", pb.SearchRequest(query=OTHER_QUERY, top_k=2, mode=SPARSE)),
    ]
    results = {r.request_id: r for r in client.search_stream(requests)}
    assert set(results) == {"a", "bad", "b"}
    assert results["a"].response is not None
    _assert_ranked(results["a"].response, 3)
    assert results["b"].response is not None
    _assert_ranked(results["b"].response, 2)
    error = results["bad"].error
    assert error is not None
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field.removeprefix("search.") for v in error.field_violations] == ["query"]


@pytest.mark.parametrize(("query", "top_k", "field"), [("", 0, "query"), (QUERY, 1001, "top_k")])
def test_invalid_argument_carries_field_violation(
    client: HybridSearchClient, query: str, top_k: int, field: str
) -> None:
    with pytest.raises(HybridSearchError) as info:
        client.search(query, top_k=top_k, mode=SPARSE)
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in info.value.field_violations] == [field]
    assert info.value.field_violations[0].description


class RecordTimeouts(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        self.timeouts.append(details.timeout)
        return continuation(details, request)


def test_deadlines_default_and_per_call(addr: str) -> None:
    recorder = RecordTimeouts()
    with HybridSearchClient(addr, timeout=7.5, interceptors=[recorder]) as client:
        client.search(QUERY, mode=SPARSE)
        client.search(QUERY, mode=SPARSE, timeout=2.5)
        client.batch_search([QUERY], mode=SPARSE, timeout=None)
    assert recorder.timeouts == [7.5, 2.5, 7.5]


def test_async_client(addr: str) -> None:
    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0, bearer_token="t") as client:
            _assert_ranked(await client.search(QUERY, top_k=3, mode=SPARSE), 3)
            batch = await client.batch_search([QUERY, OTHER_QUERY], top_k=2, mode=SPARSE)
            assert len(batch) == 2
            results = [
                r
                async for r in client.search_stream(
                    [("x", pb.SearchRequest(query=QUERY, mode=SPARSE, top_k=1))]
                )
            ]
            assert [r.request_id for r in results] == ["x"]
            with pytest.raises(HybridSearchError) as info:
                await client.search(QUERY, top_k=5000, mode=SPARSE)
            assert [v.field for v in info.value.field_violations] == ["top_k"]

    asyncio.run(scenario())


# IndexService: ids unique to this client, so the four clients' tests never collide.
LIVE_IDS = ["py-live-1", "py-live-2"]
MARKER = "pylivemarker"  # a word no sample document holds


@pytest.fixture
def clean_ids(client: HybridSearchClient) -> Iterator[list[str]]:
    """The live ids, absent before and after the test (deletes are idempotent)."""
    ids = [*LIVE_IDS, "py-live-3"]
    client.delete_documents(ids)
    yield ids
    client.delete_documents(ids)


def _hit_ids(client: HybridSearchClient, query: str) -> list[str]:
    return [h.id for h in client.search(query, top_k=10, mode=SPARSE).hits]


def test_index_service_round_trip(client: HybridSearchClient, clean_ids: list[str]) -> None:
    before = client.get_index_stats()
    assert before.writable
    first = Document(
        LIVE_IDS[0],
        title="Python live document",
        text=f"{MARKER} boundary layer notes",
        metadata={"lang": "python", "n": 1, "tags": ["a", "b"]},
    )
    second = index_pb.Document(id=LIVE_IDS[1], title="Second", text="plain text")
    # batch_size=1: three messages on the stream; the empty id is rejected, not fatal.
    response = client.upsert_documents([first, second, Document("  ")], batch_size=1)
    assert (response.accepted_count, response.replaced_count, response.rejected_count) == (2, 0, 1)
    assert [(r.position, r.id) for r in response.rejected] == [(2, "  ")]
    assert response.rejected[0].reason
    assert response.generation > before.generation

    after = client.get_index_stats()
    assert after.document_count == before.document_count + 2
    assert after.generation == response.generation

    stored = client.get_document(LIVE_IDS[0])
    assert stored == first.to_proto()
    assert Document.from_proto(stored) == first
    assert client.get_document(LIVE_IDS[1]) == second
    assert _hit_ids(client, MARKER) == [LIVE_IDS[0]]

    replaced = client.upsert_documents([Document(LIVE_IDS[0], text="rewritten")])
    assert (replaced.accepted_count, replaced.replaced_count) == (1, 1)
    assert client.get_document(LIVE_IDS[0]).text == "rewritten"
    assert _hit_ids(client, MARKER) == []

    deleted = client.delete_documents([*LIVE_IDS, "py-live-missing"])
    assert deleted.deleted_count == 2
    assert list(deleted.not_found_ids) == ["py-live-missing"]
    assert deleted.generation > replaced.generation
    assert client.get_index_stats().document_count == before.document_count
    with pytest.raises(HybridSearchError) as info:
        client.get_document(LIVE_IDS[0])
    assert info.value.code is grpc.StatusCode.NOT_FOUND


def test_upsert_accepts_ready_batches(client: HybridSearchClient, clean_ids: list[str]) -> None:
    batch = index_pb.UpsertDocumentsRequest(
        documents=[index_pb.Document(id=i, text="batched") for i in LIVE_IDS]
    )
    response = client.upsert_documents([batch, Document("py-live-3", text="loose")])
    assert response.accepted_count == 3
    assert client.get_document("py-live-3").text == "loose"


def test_upsert_source_error_propagates(client: HybridSearchClient, clean_ids: list[str]) -> None:
    class SourceBrokeError(Exception):
        pass

    def documents() -> Iterator[Document]:
        yield Document("py-live-3", text="committed before the failure")
        raise SourceBrokeError

    with pytest.raises(SourceBrokeError):
        client.upsert_documents(documents(), batch_size=1)


def test_index_calls_map_errors(client: HybridSearchClient) -> None:
    with pytest.raises(HybridSearchError) as info:
        client.get_document(" ")
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in info.value.field_violations] == ["id"]
    with pytest.raises(HybridSearchError) as info:
        client.delete_documents([])
    assert [v.field for v in info.value.field_violations] == ["ids"]
    with pytest.raises(TypeError):
        client.delete_documents("py-live-1")


def test_stream_is_lazy(client: HybridSearchClient) -> None:
    """The second request is only produced after the first answer was read: a stream that
    buffered its requests or its answers would time out here."""
    first_read = threading.Event()

    def requests() -> Iterator[tuple[str, pb.SearchRequest]]:
        yield "first", pb.SearchRequest(query=QUERY, top_k=1, mode=SPARSE)
        assert first_read.wait(10), "the first answer was not read while the stream was open"
        yield "second", pb.SearchRequest(query=OTHER_QUERY, top_k=1, mode=SPARSE)

    results = client.search_stream(requests())
    assert next(results).request_id == "first"
    first_read.set()
    assert [r.request_id for r in results] == ["second"]


def test_stream_error_mid_stream_surfaces(client: HybridSearchClient) -> None:
    """An answer arrives, then the stream fails (its deadline passes while the caller holds
    it open): the iterator raises the typed error after yielding the answer."""
    release = threading.Event()

    def requests() -> Iterator[tuple[str, pb.SearchRequest]]:
        yield "only", pb.SearchRequest(query=QUERY, top_k=1, mode=SPARSE)
        release.wait(10)  # hold the stream open

    results = client.search_stream(requests(), timeout=1.0)
    try:
        assert next(results).request_id == "only"
        with pytest.raises(HybridSearchError) as info:
            next(results)
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        release.set()


def test_async_index_service(addr: str) -> None:
    async def documents() -> AsyncIterator[Document]:
        for doc_id in LIVE_IDS:
            yield Document(doc_id, title="async", text=f"{MARKER} async")

    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0) as client:
            await client.delete_documents(LIVE_IDS)
            before = await client.get_index_stats()
            response = await client.upsert_documents(documents())
            assert response.accepted_count == 2
            assert (await client.get_index_stats()).document_count == before.document_count + 2
            assert (await client.get_document(LIVE_IDS[1])).title == "async"
            deleted = await client.delete_documents(LIVE_IDS)
            assert deleted.deleted_count == 2
            with pytest.raises(HybridSearchError) as info:
                await client.get_document(LIVE_IDS[1])
            assert info.value.code is grpc.StatusCode.NOT_FOUND

    asyncio.run(scenario())


def test_receives_replies_over_grpcs_4_mib_default(client: HybridSearchClient) -> None:
    """A batch whose reply is ~6.5 MB (under the server's 16 MiB limit) is received."""
    responses = client.batch_search(
        [QUERY] * 64,
        top_k=100,
        mode=SPARSE,
        return_fields=[pb.STORED_FIELD_TITLE, pb.STORED_FIELD_TEXT],
        timeout=60,
    )
    assert sum(r.ByteSize() for r in responses) > 4 * 1024 * 1024


def test_stream_close_cancels_the_call(client: HybridSearchClient) -> None:
    """``results.close()`` after breaking out of the loop stops pulling requests."""
    pulled = 0

    def requests() -> Iterator[tuple[str, pb.SearchRequest]]:
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield str(i), pb.SearchRequest(query=QUERY, top_k=1, mode=SPARSE)

    results = client.search_stream(requests())
    for _ in results:
        break
    results.close()
    at_close = pulled
    time.sleep(0.5)
    assert pulled == at_close


def test_async_stream_aclose_cancels_the_call(addr: str) -> None:
    """``await results.aclose()`` after the first answer stops pulling requests."""
    pulled = 0

    async def requests() -> AsyncIterator[tuple[str, pb.SearchRequest]]:
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield str(i), pb.SearchRequest(query=QUERY, top_k=1, mode=SPARSE)

    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0) as client:
            results = client.search_stream(requests())
            async for _ in results:
                break
            await results.aclose()
            at_close = pulled
            await asyncio.sleep(0.5)
            assert pulled == at_close

    asyncio.run(scenario())


def test_async_stream_request_source_error_propagates(addr: str) -> None:
    """An exception raised by the caller's request iterable ends the stream and reaches the
    caller as itself (not as a cancellation)."""

    class SourceBrokeError(Exception):
        pass

    async def requests() -> AsyncIterator[tuple[str, pb.SearchRequest]]:
        yield "first", pb.SearchRequest(query=QUERY, top_k=1, mode=SPARSE)
        raise SourceBrokeError("no more queries")

    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0) as client:
            with pytest.raises(SourceBrokeError):
                async for _ in client.search_stream(requests()):
                    pass

    asyncio.run(scenario())


def test_async_upsert_source_error_propagates(addr: str, clean_ids: list[str]) -> None:
    """An exception raised by the caller's documents ends the upload and reaches the caller
    as itself: it came back as asyncio.CancelledError (grpc.aio's end of a call the client
    cancelled), though the README said it is raised as itself."""

    class SourceBrokeError(Exception):
        pass

    async def documents() -> AsyncIterator[Document]:
        yield Document("py-live-4", text="committed before the failure")
        raise SourceBrokeError

    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0) as client:
            with pytest.raises(SourceBrokeError):
                await client.upsert_documents(documents(), batch_size=1)

    clean_ids.append("py-live-4")
    asyncio.run(scenario())
