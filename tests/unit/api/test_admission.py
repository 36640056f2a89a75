"""SearchServicer._run: bounded admission (RESOURCE_EXHAUSTED) and cancellation reaching the
request's CancelScope (which drops its queued encoding in the batcher)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from hybridsearch.api.search_servicer import EngineSlot, SearchServicer
from hybridsearch.config import ServerSettings
from hybridsearch.encoders.batching import CancelScope, cancel_scope
from hybridsearch.errors import OverloadedError


class Blocking:
    """A search function that records its request's scope and waits to be released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.scopes: list[CancelScope | None] = []

    def __call__(self) -> str:
        self.scopes.append(cancel_scope.get())
        self.started.set()
        self.release.wait(timeout=30)
        return "done"


async def _started(blocking: Blocking) -> None:
    await asyncio.get_running_loop().run_in_executor(None, blocking.started.wait, 30)


def make_servicer(max_in_flight: int) -> tuple[SearchServicer, ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(4)
    settings = ServerSettings(max_in_flight=max_in_flight)
    return SearchServicer(EngineSlot(), settings, executor), executor


def test_admission_refuses_beyond_max_in_flight() -> None:
    async def scenario() -> None:
        servicer, executor = make_servicer(max_in_flight=1)
        blocking = Blocking()
        first = asyncio.create_task(servicer._run(blocking))
        await _started(blocking)
        with pytest.raises(OverloadedError):
            await servicer._run(blocking)
        blocking.release.set()
        assert await first == "done"
        assert await servicer._run(lambda: "again") == "again"  # room once it finished
        executor.shutdown()

    asyncio.run(scenario())


def test_cancelled_call_cancels_its_scope() -> None:
    async def scenario() -> None:
        servicer, executor = make_servicer(max_in_flight=8)
        blocking = Blocking()
        task = asyncio.create_task(servicer._run(blocking))
        await _started(blocking)
        (scope,) = blocking.scopes
        assert scope is not None and not scope.cancelled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert scope.cancelled
        assert cancel_scope.get() is None  # the caller's own context is untouched
        blocking.release.set()
        executor.shutdown()

    asyncio.run(scenario())
