"""A busy ``AsyncHybridSearchClient.search_stream`` at a server stop ends with the server's own
``UNAVAILABLE`` ("the server is shutting down ..."), the status the README tells callers to
resend on, never ``INTERNAL``.

grpc.aio (grpc/grpc#36066) replaces the status the server sent with ``INTERNAL`` "Internal error
from Core" when a client write is in flight as the call ends; streams fed without a pause hit
that at almost every stop. This test starts its own ``hybridsearch serve`` (it needs the server
package, as ``scripts/clients_test.sh`` has it), keeps several streams writing, sends SIGTERM,
and looks at how each stream ended; a few rounds, as the race is one of timing.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import QUERY

from hybridsearch_client import AsyncHybridSearchClient, HybridSearchError, pb

harness = pytest.importorskip(
    "hybridsearch.harness", reason="needs the hybridsearch server package to start a server"
)

ROUNDS = 3
STREAMS = 6
WAIT_S = 60.0  # the most any step may take on a loaded machine


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample corpus, BM25-only (no model needed)."""
    out = tmp_path_factory.mktemp("idx") / "sample"
    harness.run_cli("index", "--sample", "--out", str(out), "--no-dense", "--no-progress")
    return out


async def _busy_stream(
    client: AsyncHybridSearchClient, name: str, answered: asyncio.Event
) -> BaseException | None:
    """Feed one stream without end; return the exception it ended with (None: ended OK)."""

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


async def _stop_while_streaming(server: harness.ServerProcess) -> list[BaseException | None]:
    async with AsyncHybridSearchClient(server.address, timeout=WAIT_S) as client:
        answered = [asyncio.Event() for _ in range(STREAMS)]
        streams = [
            asyncio.create_task(_busy_stream(client, f"s{i}", answered[i])) for i in range(STREAMS)
        ]
        # Every stream is busy (has answers back, keeps writing) when the stop begins.
        await asyncio.wait_for(asyncio.gather(*(a.wait() for a in answered)), WAIT_S)
        server.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(asyncio.gather(*streams), WAIT_S)


def _ending(outcome: BaseException | None) -> str:
    if isinstance(outcome, HybridSearchError):
        return f"{outcome.code.name}: {outcome.message}"
    return repr(outcome)


def test_busy_async_streams_end_with_the_servers_unavailable(sample_index: Path) -> None:
    """Every stream ends UNAVAILABLE (retryable), none INTERNAL. The message is the server's,
    except where the connection closed before its status was read (a transport UNAVAILABLE,
    e.g. "Stream removed"), which no client can tell apart."""
    endings: list[str] = []
    for _ in range(ROUNDS):
        server = harness.start_server(
            "--index", str(sample_index), "--host", "127.0.0.1", "--grace-period-s", "3"
        )
        try:
            server.wait_serving(timeout=WAIT_S)
            outcomes = asyncio.run(_stop_while_streaming(server))
            assert server.process.wait(timeout=WAIT_S) == 0
        finally:
            server.stop()
        endings += [_ending(o) for o in outcomes]
        assert [e for e in endings if not e.startswith("UNAVAILABLE: ")] == []
    assert any(e.startswith("UNAVAILABLE: the server is shutting down") for e in endings)
