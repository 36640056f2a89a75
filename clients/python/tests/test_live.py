"""Against a live server (HYBRIDSEARCH_ADDR): search, batch, stream, errors, deadlines."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from conftest import OTHER_QUERY, QUERY

from hybridsearch_client import AsyncHybridSearchClient, HybridSearchClient, HybridSearchError, pb

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
