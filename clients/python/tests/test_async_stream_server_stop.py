"""A busy ``AsyncHybridSearchClient.search_stream`` or ``upsert_documents`` at a server stop ends
with the server's own ``UNAVAILABLE`` ("the server is shutting down ..."), the status the README
tells callers to resend on, never ``INTERNAL`` — also with pass-through interceptors of the
caller's in ``interceptors``.

grpc.aio (grpc/grpc#36066) replaces the status the server sent with ``INTERNAL`` "Internal error
from Core" when a client write is in flight as the call ends; streams fed without a pause hit
that at almost every stop. These tests start their own ``hybridsearch serve`` (they need the
server package, as ``scripts/clients_test.sh`` has it), keep several streams writing, send
SIGTERM, and look at how each stream ended; a few rounds, as the race is one of timing.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from conftest import QUERY

from hybridsearch_client import AsyncHybridSearchClient, Document, HybridSearchError, pb

harness = pytest.importorskip(
    "hybridsearch.harness", reason="needs the hybridsearch server package to start a server"
)

ROUNDS = 3
STREAMS = 6
WAIT_S = 60.0  # the most any step may take on a loaded machine

Requests = Iterable[Any] | AsyncIterable[Any]
Stream = Callable[[AsyncHybridSearchClient, str, asyncio.Event], Awaitable[BaseException | None]]


class PassStreamStream(grpc.aio.StreamStreamClientInterceptor):
    """A caller's stream-stream interceptor that hands the call on untouched."""

    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        details: grpc.aio.ClientCallDetails,
        requests: Requests,
    ) -> Any:
        return await continuation(details, requests)


class PassStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    """A caller's stream-unary interceptor that hands the call on untouched."""

    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        details: grpc.aio.ClientCallDetails,
        requests: Requests,
    ) -> Any:
        return await continuation(details, requests)


def _callers_interceptors(kind: str) -> list[grpc.aio.ClientInterceptor]:
    return [PassStreamStream(), PassStreamUnary()] if kind == "pass-through" else []


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample corpus, BM25-only (no model needed)."""
    out = tmp_path_factory.mktemp("idx") / "sample"
    harness.run_cli("index", "--sample", "--out", str(out), "--no-dense", "--no-progress")
    return out


async def _busy_search_stream(
    client: AsyncHybridSearchClient, name: str, answered: asyncio.Event
) -> BaseException | None:
    """Feed one SearchStream without end; return the exception it ended with (None: ended OK)."""

    async def requests() -> AsyncIterator[tuple[str, pb.SearchRequest]]:
        sent = 0
        while True:
            yield (
                f"{name}-{sent}",
                pb.SearchRequest(query=QUERY, top_k=1, mode=pb.RETRIEVAL_MODE_SPARSE),
            )
            sent += 1
            await asyncio.sleep(0)

    try:
        async for _ in client.search_stream(requests()):
            answered.set()
    except HybridSearchError as error:
        return error
    return None


async def _busy_upsert(
    client: AsyncHybridSearchClient, name: str, applied: asyncio.Event
) -> BaseException | None:
    """Feed one UpsertDocuments stream without end, a batch of 5 documents at a time; return
    the exception it ended with (None: ended OK). ``applied`` is set once the server has
    committed the first batch: the stream is then the servicer's (a stream the server has not
    taken up yet when the stop begins is cancelled by grpc's server, which is no concern of the
    client's)."""

    async def documents() -> AsyncIterator[Document]:
        sent = 0
        while True:
            yield Document(f"{name}-{sent}", "Stop", f"{QUERY} while the server stops")
            sent += 1
            if sent == 5:  # the first batch is written
                await _until_stored(client, f"{name}-0")
                applied.set()
            await asyncio.sleep(0)

    try:
        await client.upsert_documents(documents(), batch_size=5)
    except HybridSearchError as error:
        return error
    return None


async def _until_stored(client: AsyncHybridSearchClient, document_id: str) -> None:
    """Wait until the server has ``document_id``."""
    while True:
        try:
            await client.get_document(document_id)
            return
        except HybridSearchError as error:
            if error.code.name != "NOT_FOUND":
                raise
        await asyncio.sleep(0.05)


async def _stop_while_streaming(
    server: harness.ServerProcess, stream: Stream, interceptors: list[grpc.aio.ClientInterceptor]
) -> list[BaseException | None]:
    async with AsyncHybridSearchClient(
        server.address, timeout=WAIT_S, interceptors=interceptors
    ) as client:
        busy = [asyncio.Event() for _ in range(STREAMS)]
        streams = [asyncio.create_task(stream(client, f"s{i}", busy[i])) for i in range(STREAMS)]
        # Every stream is busy (the server has taken it up, it keeps writing) when the stop
        # begins.
        await asyncio.wait_for(asyncio.gather(*(b.wait() for b in busy)), WAIT_S)
        server.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(asyncio.gather(*streams), WAIT_S)


def _ending(outcome: BaseException | None) -> str:
    if isinstance(outcome, HybridSearchError):
        return f"{outcome.code.name}: {outcome.message}"
    return repr(outcome)


def _endings_at_stops(index: Path, stream: Stream, interceptors: str) -> list[str]:
    """How every stream of ROUNDS stops ended; fails on the first round with one not
    UNAVAILABLE."""
    endings: list[str] = []
    for _ in range(ROUNDS):
        server = harness.start_server(
            "--index", str(index), "--host", "127.0.0.1", "--grace-period-s", "3"
        )
        try:
            server.wait_serving(timeout=WAIT_S)
            outcomes = asyncio.run(
                _stop_while_streaming(server, stream, _callers_interceptors(interceptors))
            )
            assert server.process.wait(timeout=WAIT_S) == 0
        finally:
            server.stop()
        endings += [_ending(o) for o in outcomes]
        assert [e for e in endings if not e.startswith("UNAVAILABLE: ")] == []
    return endings


@pytest.mark.parametrize("interceptors", ["none", "pass-through"])
def test_busy_async_streams_end_with_the_servers_unavailable(
    sample_index: Path, interceptors: str
) -> None:
    """Every SearchStream ends UNAVAILABLE (retryable), none INTERNAL. The message is the
    server's, except where the connection closed before its status was read (a transport
    UNAVAILABLE, e.g. "Stream removed"), which no client can tell apart."""
    endings = _endings_at_stops(sample_index, _busy_search_stream, interceptors)
    assert any(e.startswith("UNAVAILABLE: the server is shutting down") for e in endings)


@pytest.mark.parametrize("interceptors", ["none", "pass-through"])
def test_busy_async_upserts_end_with_the_servers_unavailable(
    tmp_path: Path, interceptors: str
) -> None:
    """Every UpsertDocuments stream ends UNAVAILABLE (retryable), none INTERNAL (transport
    messages as above)."""
    index = tmp_path / "sample"
    harness.run_cli("index", "--sample", "--out", str(index), "--no-dense", "--no-progress")
    endings = _endings_at_stops(index, _busy_upsert, interceptors)
    assert any(e.startswith("UNAVAILABLE: the server is shutting down") for e in endings)
