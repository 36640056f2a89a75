"""SearchServicer._run: a cancelled call cancels its request's CancelScope (which drops its
query encoding while it waits in the batcher)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.api.search_servicer import SearchServicer
from hybridsearch.config import ServerSettings
from hybridsearch.engine.batching import CancelScope, cancel_scope


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


class NoDeadline:
    """The part of a grpc.aio ServicerContext `_run` reads: a call without deadline."""

    def time_remaining(self) -> None:
        return None


def make_servicer() -> tuple[SearchServicer, ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(4)
    return SearchServicer(EngineSlot(), ServerSettings(), executor), executor


def test_cancelled_call_cancels_its_scope() -> None:
    async def scenario() -> None:
        servicer, executor = make_servicer()
        blocking = Blocking()
        task = asyncio.create_task(servicer._run(NoDeadline(), blocking))  # type: ignore[arg-type]
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
