"""SearchServicer skips engine work for a call whose deadline has passed."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.api.search_servicer import SearchServicer
from hybridsearch.config import ServerSettings
from hybridsearch.errors import DeadlineExceededError


class FakeContext:
    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


def run(remaining: float | None, calls: list[int]) -> Any:
    servicer = SearchServicer(EngineSlot(), ServerSettings(), ThreadPoolExecutor(1))

    def work() -> str:
        calls.append(1)
        return "done"

    async def go() -> Any:
        return await servicer._run(FakeContext(remaining), work)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_work_runs_with_time_left_or_no_deadline() -> None:
    calls: list[int] = []
    assert run(5.0, calls) == "done"
    assert run(None, calls) == "done"
    assert run(float("inf"), calls) == "done"
    assert calls == [1, 1, 1]


def test_expired_deadline_raises_without_running_the_work() -> None:
    calls: list[int] = []
    with pytest.raises(DeadlineExceededError):
        run(0.0, calls)
    assert calls == []
