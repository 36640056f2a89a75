"""A call's deadline, carried to the threads that do its work.

grpc ends a call at its deadline, but not the thread working on it: a sharded collection's
calls to its replicas read `request_deadline` to stop waiting when the caller has stopped too
(without one they wait `call_timeout_s`, holding a search or write thread that long).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc

from hybridsearch.errors import DeadlineExceededError
from hybridsearch.sharding.group import request_deadline

T = TypeVar("T")


def deadline_of(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The call's deadline on the `time.monotonic` clock, or None when it has none."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 1e9:  # no deadline reads as a huge number
        return None
    return time.monotonic() + max(0.0, remaining)


def check_deadline(deadline: float | None, when: str) -> None:
    """Raise `DeadlineExceededError` ("the deadline passed <when>") once ``deadline`` is past."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError(f"the deadline passed {when}")


def work_context(deadline: float | None) -> contextvars.Context:
    """A copy of the current context whose `request_deadline` is ``deadline``: run a call's
    work in it (``loop.run_in_executor(pool, ctx.run, fn)``; `asyncio.to_thread` copies the
    current context by itself)."""
    context = contextvars.copy_context()
    context.run(request_deadline.set, deadline)
    return context


async def run_before_deadline(
    executor: Executor,
    context: grpc.aio.ServicerContext[Any, Any],
    when: str,
    fn: Callable[..., T],
    *args: Any,
) -> T:
    """``fn(*args)`` on ``executor`` with the caller's deadline (`work_context`); not started
    once the deadline has passed while it waited (`DeadlineExceededError`: "the deadline
    passed <when>")."""
    deadline = deadline_of(context)

    def guarded() -> T:
        check_deadline(deadline, when)
        return fn(*args)

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, work_context(deadline).run, guarded)
