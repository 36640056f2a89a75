"""In-process servers for API tests: the real `SearchServer` on an event loop of its own thread.

Most API tests need a server, not a process: this one costs no interpreter start-up and no
imports per server, and lets a test reach the engine it serves and the server's metrics.
Tests of what only a process has (signals, --workers, SIGKILL, the CLI's start-up) keep
using `tests.conftest.start_server`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.api.server import EngineFactory, SearchServer
from hybridsearch.config import ServerSettings
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.loader import LoadedIndex, compaction_policy, load_index
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.writer import IndexWriter
from tests.conftest import wait_serving
from tests.fakes import HashEncoder

START_TIMEOUT_S = 300.0  # loading the ONNX model on a busy 2-core machine can take long
STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Running:
    loop: asyncio.AbstractEventLoop
    address: str
    stop: asyncio.Event


class InProcessServer:
    """A `SearchServer` serving ``settings`` until `stop`; ``address`` is its HOST:PORT.

    The server runs under `asyncio.run` on a thread of its own (grpc.aio needs a running
    loop), so its shutdown is the one `serve` does: stop the server, close the engine, and let
    `asyncio.run` cancel leftovers and close the loop.
    """

    def __init__(
        self, settings: ServerSettings, engine_factory: EngineFactory = load_index
    ) -> None:
        self.settings = settings
        self._factory = engine_factory
        self._loaded: LoadedIndex | HybridSearcher | None = None
        self._metrics: ServerMetrics | None = None
        self._ready: Future[_Running] = Future()
        self._thread = threading.Thread(target=self._run, name="in-process-server", daemon=True)
        self._thread.start()
        running = self._ready.result(timeout=START_TIMEOUT_S)
        self._loop, self.address, self._stop = running.loop, running.address, running.stop
        wait_serving(self.address, timeout=START_TIMEOUT_S)

    @property
    def engine(self) -> HybridSearcher:
        """The searcher being served (to read its batcher's counters)."""
        loaded = self._loaded
        assert loaded is not None, "the server has not loaded its index"
        return loaded.searcher if isinstance(loaded, LoadedIndex) else loaded

    def scrape(self) -> str:
        """Every metric of the server, as a scrape reads them."""
        assert self._metrics is not None
        return generate_latest(self._metrics.registry).decode()

    def metric(self, name: str, **labels: str) -> float | None:
        """The current value of one of the server's metrics (None when it has none yet)."""
        assert self._metrics is not None
        return self._metrics.registry.get_sample_value(name, labels)

    def _load(self, settings: ServerSettings) -> LoadedIndex | HybridSearcher:
        self._loaded = self._factory(settings)
        return self._loaded

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            else:
                raise  # reported by threading's excepthook (an error under -W error)

    async def _serve(self) -> None:
        server = SearchServer(self.settings, self._load)
        self._metrics = server.metrics
        try:
            address = await server.start()
            await server.load()
        except BaseException:
            await server.stop()
            raise
        stop = asyncio.Event()
        self._ready.set_result(_Running(asyncio.get_running_loop(), address, stop))
        await stop.wait()
        await server.stop()

    def stop(self) -> None:
        """Stop serving (in-flight calls get the grace period) and wait for the thread."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=STOP_TIMEOUT_S)
        assert not self._thread.is_alive(), "the in-process server did not stop"


@contextmanager
def in_process_server(
    settings: ServerSettings, engine_factory: EngineFactory = load_index
) -> Iterator[InProcessServer]:
    """An `InProcessServer` for the ``with`` block (``settings.port`` 0 picks a free one)."""
    server = InProcessServer(settings, engine_factory)
    try:
        yield server
    finally:
        server.stop()


def load_with_fake_encoder(settings: ServerSettings) -> LoadedIndex:
    """`load_index` for a writable index whose vectors `HashEncoder` made (no ONNX model)."""
    writer = IndexWriter(settings.index)
    searcher = HybridSearcher(writer.committed(), HashEncoder())
    return LoadedIndex(searcher, Ingestor(writer, searcher, compaction_policy(settings)))


@contextmanager
def serving_fake_index(index: Path, **overrides: Any) -> Iterator[str]:
    """Serve a `HashEncoder` index (settings overridden by ``overrides``) in-process for the
    ``with`` block; yields its address."""
    settings = dataclasses.replace(ServerSettings(index=index, port=0), **overrides)
    with in_process_server(settings, load_with_fake_encoder) as server:
        yield server.address
