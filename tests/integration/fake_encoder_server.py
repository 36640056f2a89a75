"""An in-process server over an index with `HashEncoder` vectors (no ONNX model): the real
gRPC server, servicers, engine and storage, on port 0, in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from hybridsearch.api.server import SearchServer
from hybridsearch.config import ServerSettings
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.loader import LoadedIndex, compaction_policy
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.writer import IndexWriter
from tests.fakes import HashEncoder


def load_with_fake_encoder(settings: ServerSettings) -> LoadedIndex:
    """`load_index` for a writable index whose vectors `HashEncoder` made."""
    writer = IndexWriter(settings.index)
    searcher = HybridSearcher(writer.committed(), HashEncoder())
    return LoadedIndex(searcher, Ingestor(writer, searcher, compaction_policy(settings)))


@contextmanager
def serving(index: Path, **settings: object) -> Iterator[str]:
    """Serve ``index`` (settings overridden by ``settings``) until the block ends; yields
    the address once the index is loaded."""
    config = replace(ServerSettings(index=index, port=0), **settings)  # type: ignore[arg-type]
    ready: Future[str] = Future()
    stopping = threading.Event()

    async def run() -> None:
        try:
            server = SearchServer(config, load_with_fake_encoder)  # grpc.aio binds this loop
            address = await server.start()
            await server.load()
        except BaseException as exc:
            ready.set_exception(exc)
            raise
        ready.set_result(address)
        await asyncio.to_thread(stopping.wait)
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=120)
    finally:
        stopping.set()
        thread.join(timeout=60)
