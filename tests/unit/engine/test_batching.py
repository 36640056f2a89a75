"""MicroBatcher: results reach the right callers, batches group by length without starving
anyone, cancellation drops, a full queue refuses.

A gated batch function holds the worker inside a batch, so each test arranges the queue
deterministically (no sleeps, no timing assertions).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from hybridsearch.engine.batching import (
    BatchingSettings,
    CancelScope,
    MicroBatcher,
    cancel_scope,
)
from hybridsearch.errors import OverloadedError

Job = tuple[str, ...]  # texts "qN"; each result is the list of N


class GatedRun:
    """The batch function: records each batch; each run blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[list[Job]] = []
        self.gate = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)
        self.fail_next = False

    def __call__(self, jobs: list[Job]) -> Sequence[list[int]]:
        self.batches.append(list(jobs))
        self.entered.release()
        self.gate.acquire()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("boom")
        return [[int(t.removeprefix("q")) for t in job] for job in jobs]

    def step(self) -> None:
        """Let the running batch finish and wait until the next one has started."""
        self.gate.release()
        self.entered.acquire()


@pytest.fixture
def run() -> GatedRun:
    return GatedRun()


@contextmanager
def batcher(run: GatedRun, **limits: int) -> Iterator[MicroBatcher[Job, list[int]]]:
    micro: MicroBatcher[Job, list[int]] = MicroBatcher(run, BatchingSettings(**limits))
    try:
        yield micro
    finally:
        for _ in range(64):
            run.gate.release()
        micro.close()


def submit(micro: MicroBatcher[Job, list[int]], *texts: str, tokens: int = 10) -> Future[list[int]]:
    return micro.submit(tuple(texts), size=len(texts), tokens=tokens)


def hold_worker(micro: MicroBatcher[Job, list[int]], run: GatedRun) -> Future[list[int]]:
    """Submit one job and wait until the worker is blocked inside its batch."""
    first = submit(micro, "q0")
    run.entered.acquire()
    return first


def test_results_go_back_to_their_callers(run: GatedRun) -> None:
    with batcher(run, max_batch_size=32) as micro:
        first = hold_worker(micro, run)
        futures = [submit(micro, f"q{i}", f"q{i + 100}") for i in range(1, 6)]
        run.step()  # batch 2 gathers everything queued meanwhile
        run.gate.release()
        assert first.result() == [0]
        for i, future in enumerate(futures, 1):
            assert future.result() == [i, i + 100]
        # Within a batch, jobs keep their arrival order.
        assert run.batches[1] == [(f"q{i}", f"q{i + 100}") for i in range(1, 6)]
        stats = micro.stats()
        assert (stats.batches, stats.texts) == (2, 11)


def test_batches_respect_max_batch_size(run: GatedRun) -> None:
    with batcher(run, max_batch_size=3) as micro:
        hold_worker(micro, run)
        futures = [submit(micro, f"q{i}") for i in range(1, 8)]
        for _ in range(3):
            run.step()
        run.gate.release()
        assert [len(b) for b in run.batches] == [1, 3, 3, 1]
        assert [f.result() for f in futures] == [[i] for i in range(1, 8)]


def test_batches_group_jobs_of_similar_length(run: GatedRun) -> None:
    lengths = {"q1": 10, "q2": 60, "q3": 12, "q4": 58, "q5": 11, "q6": 61}
    with batcher(run, max_batch_size=3, max_batch_tokens=10_000) as micro:
        hold_worker(micro, run)
        futures = {t: submit(micro, t, tokens=n) for t, n in lengths.items()}
        run.step()
        run.step()
        run.gate.release()
        assert [sorted(j[0] for j in b) for b in run.batches[1:]] == [
            ["q1", "q3", "q5"],  # the oldest (q1) with its nearest lengths
            ["q2", "q4", "q6"],
        ]
        assert {t: f.result() for t, f in futures.items()} == {t: [int(t[1:])] for t in lengths}


def test_the_oldest_job_is_always_in_the_next_batch(run: GatedRun) -> None:
    with batcher(run, max_batch_size=2, max_batch_tokens=10_000) as micro:
        hold_worker(micro, run)
        submit(micro, "q1", tokens=100)  # oldest, and unlike every later job
        for i in range(2, 8):
            submit(micro, f"q{i}", tokens=10)
        run.step()
        assert "q1" in {j[0] for j in run.batches[1]}


def test_token_budget_splits_batches(run: GatedRun) -> None:
    with batcher(run, max_batch_size=32, max_batch_tokens=104) as micro:
        hold_worker(micro, run)
        futures = [submit(micro, f"q{i}", tokens=52) for i in range(1, 4)]
        run.step()
        run.step()
        run.gate.release()
        assert [len(b) for b in run.batches] == [1, 2, 1]
        assert [f.result() for f in futures] == [[1], [2], [3]]


def test_a_job_larger_than_the_batch_runs_alone(run: GatedRun) -> None:
    with batcher(run, max_batch_size=2) as micro:
        hold_worker(micro, run)
        big = submit(micro, *(f"q{i}" for i in range(1, 6)))
        run.step()
        run.gate.release()
        assert big.result() == [1, 2, 3, 4, 5]
        assert run.batches[1] == [tuple(f"q{i}" for i in range(1, 6))]


def test_waits_for_company_until_the_batch_is_full(run: GatedRun) -> None:
    # A wait far longer than any test run: only a full batch can start it.
    with batcher(run, max_batch_size=2, max_wait_us=600_000_000) as micro:
        first = submit(micro, "q1")
        second = submit(micro, "q2")
        run.entered.acquire()
        run.gate.release()
        assert (first.result(), second.result()) == ([1], [2])
        assert run.batches == [[("q1",), ("q2",)]]


def test_cancelled_waiting_job_is_dropped(run: GatedRun) -> None:
    with batcher(run) as micro:
        hold_worker(micro, run)
        keep = submit(micro, "q1")
        dropped = submit(micro, "q2")
        assert dropped.cancel()
        run.step()
        run.gate.release()
        assert run.batches[1] == [("q1",)]
        assert keep.result() == [1]
        assert micro.stats().cancelled == 1


def test_cancel_scope_drops_a_blocked_caller(run: GatedRun) -> None:
    """A caller waiting on its job is released when its request's scope is cancelled."""
    with batcher(run) as micro:
        hold_worker(micro, run)
        scope = CancelScope()

        def call() -> list[int]:
            cancel_scope.set(scope)
            return submit(micro, "q3").result()

        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(call)
            while micro.queued == 0:  # the caller has queued its job
                time.sleep(0)
            scope.cancel()
            with pytest.raises(CancelledError):
                caller.result(timeout=30)
        run.gate.release()
        follow = submit(micro, "q4")
        run.entered.acquire()
        run.gate.release()
        assert follow.result() == [4]
        assert [("q3",)] not in run.batches


def test_a_cancelled_waiting_job_frees_its_queue_slot(run: GatedRun) -> None:
    with batcher(run, max_queue=1) as micro:
        hold_worker(micro, run)
        gone = submit(micro, "q1")
        assert gone.cancel()
        taken = submit(micro, "q2")  # refused if the cancelled job still held the only slot
        assert micro.stats().cancelled == 1
        run.step()
        run.gate.release()
        assert taken.result() == [2]
        assert [("q1",)] not in run.batches


def test_full_queue_refuses_with_overloaded(run: GatedRun) -> None:
    with batcher(run, max_queue=2) as micro:
        hold_worker(micro, run)
        queued = [submit(micro, "q1"), submit(micro, "q2")]
        with pytest.raises(OverloadedError):
            submit(micro, "q3")
        assert micro.stats().rejected == 1
        run.step()
        run.gate.release()
        assert [f.result() for f in queued] == [[1], [2]]
        # Room again once the queue drained.
        again = submit(micro, "q5")
        run.entered.acquire()
        run.gate.release()
        assert again.result() == [5]


def test_failure_reaches_every_caller_of_the_batch(run: GatedRun) -> None:
    with batcher(run) as micro:
        hold_worker(micro, run)
        futures = [submit(micro, "q1"), submit(micro, "q2")]
        run.step()
        run.fail_next = True
        run.gate.release()
        for future in futures:
            with pytest.raises(RuntimeError, match="boom"):
                future.result()


def test_concurrent_callers_each_get_their_own_result(run: GatedRun) -> None:
    with batcher(run, max_batch_size=8) as micro:
        for _ in range(200):
            run.gate.release()
        with ThreadPoolExecutor(16) as pool:
            results = list(
                pool.map(lambda i: submit(micro, f"q{i}", tokens=i % 7).result(), range(100))
            )
        assert results == [[i] for i in range(100)]
        assert sum(len(b) for b in run.batches) == 100
        assert max(len(b) for b in run.batches) <= 8


def test_close_cancels_queued_jobs(run: GatedRun) -> None:
    micro: MicroBatcher[Job, list[int]] = MicroBatcher(run)
    hold_worker(micro, run)
    queued = submit(micro, "q1")
    closer = threading.Thread(target=micro.close)
    closer.start()
    run.gate.release()
    closer.join(timeout=30)
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        submit(micro, "q2")


@pytest.mark.parametrize(
    "limits",
    [{"max_batch_size": 0}, {"max_queue": 0}, {"max_wait_us": -1}, {"max_batch_tokens": 0}],
)
def test_invalid_limits(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BatchingSettings(**limits)
