"""BatchingEncoder: results reach the right callers, cancellation drops, a full queue refuses.

A gated fake encoder holds the worker inside a batch, so each test arranges the queue
deterministically (no sleeps, no timing assertions).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.encoders.batching import (
    BatchingEncoder,
    BatchingSettings,
    CancelScope,
    cancel_scope,
    estimate_tokens,
)
from hybridsearch.errors import OverloadedError

DIM = 4


class GatedEncoder:
    """Encodes "qN" as a vector made of N; each run blocks until the test opens the gate."""

    model_id = "fake"
    dimension = DIM
    provider = "CPUExecutionProvider"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)
        self.fail_next = False

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.batches.append(list(texts))
        self.entered.release()
        self.gate.acquire()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("boom")
        return np.array([vector_of(t) for t in texts], dtype=np.float32)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return np.array([vector_of(t) for t in texts], dtype=np.float32)


def vector_of(text: str) -> list[float]:
    value = float(int(text.removeprefix("q")))
    return [value, value + 0.5, -value, 1.0]


@pytest.fixture
def fake() -> GatedEncoder:
    return GatedEncoder()


@contextmanager
def batcher(fake: GatedEncoder, **limits: int) -> Iterator[BatchingEncoder]:
    encoder = BatchingEncoder(fake, BatchingSettings(**limits))
    try:
        yield encoder
    finally:
        for _ in range(64):
            fake.gate.release()
        encoder.close()


def hold_worker(encoder: BatchingEncoder, fake: GatedEncoder) -> Future[NDArray[np.float32]]:
    """Submit one request and wait until the worker is blocked inside its batch."""
    first = encoder.submit(["q0"])
    fake.entered.acquire()
    return first


def test_rows_go_back_to_their_callers_in_order(fake: GatedEncoder) -> None:
    with batcher(fake, max_batch_size=32) as encoder:
        first = hold_worker(encoder, fake)
        futures = [encoder.submit([f"q{i}", f"q{i + 100}"]) for i in range(1, 6)]
        fake.gate.release()  # finish batch 1; batch 2 gathers everything queued meanwhile
        fake.entered.acquire()
        fake.gate.release()
        np.testing.assert_array_equal(first.result(), [vector_of("q0")])
        for i, future in enumerate(futures, 1):
            expected = [vector_of(f"q{i}"), vector_of(f"q{i + 100}")]
            np.testing.assert_array_equal(future.result(), expected)
        assert fake.batches[1] == [t for i in range(1, 6) for t in (f"q{i}", f"q{i + 100}")]
        stats = encoder.stats()
        assert (stats.batches, stats.texts) == (2, 11)


def test_batches_respect_max_batch_size(fake: GatedEncoder) -> None:
    with batcher(fake, max_batch_size=3) as encoder:
        hold_worker(encoder, fake)
        futures = [encoder.submit([f"q{i}"]) for i in range(1, 8)]
        for _ in range(3):
            fake.gate.release()
            fake.entered.acquire()
        fake.gate.release()
        assert [len(b) for b in fake.batches] == [1, 3, 3, 1]
        assert [f.result()[0, 0] for f in futures] == list(range(1, 8))


def test_token_budget_splits_batches(fake: GatedEncoder) -> None:
    long_text = "q7" + " " * 200  # about 52 estimated tokens
    budget = 2 * estimate_tokens(long_text)
    with batcher(fake, max_batch_size=32, max_batch_tokens=budget) as encoder:
        hold_worker(encoder, fake)
        texts = [long_text, long_text, long_text]
        futures = [encoder.submit([t]) for t in texts]
        for _ in range(2):
            fake.gate.release()
            fake.entered.acquire()
        fake.gate.release()
        assert [len(b) for b in fake.batches] == [1, 2, 1]
        assert all(f.result().shape == (1, DIM) for f in futures)


def test_a_request_larger_than_the_batch_runs_alone(fake: GatedEncoder) -> None:
    with batcher(fake, max_batch_size=2) as encoder:
        hold_worker(encoder, fake)
        big = encoder.submit([f"q{i}" for i in range(1, 6)])
        fake.gate.release()
        fake.entered.acquire()
        fake.gate.release()
        assert big.result().shape == (5, DIM)
        assert fake.batches[1] == [f"q{i}" for i in range(1, 6)]


def test_cancelled_waiting_request_is_dropped(fake: GatedEncoder) -> None:
    with batcher(fake) as encoder:
        hold_worker(encoder, fake)
        keep = encoder.submit(["q1"])
        dropped = encoder.submit(["q2"])
        assert dropped.cancel()
        fake.gate.release()
        fake.entered.acquire()
        fake.gate.release()
        assert fake.batches[1] == ["q1"]
        assert keep.result()[0, 0] == 1.0
        assert encoder.stats().cancelled == 1


def test_cancel_scope_drops_a_blocked_caller(fake: GatedEncoder) -> None:
    """A caller blocked in encode_queries is released when its request's scope is cancelled."""
    with batcher(fake) as encoder:
        hold_worker(encoder, fake)
        scope = CancelScope()

        def call() -> NDArray[np.float32]:
            cancel_scope.set(scope)
            return encoder.encode_queries(["q3"])

        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(call)
            while encoder.queued == 0:  # the caller has queued its request
                time.sleep(0)
            scope.cancel()
            with pytest.raises(CancelledError):
                caller.result(timeout=30)
        fake.gate.release()
        follow = encoder.submit(["q4"])
        fake.entered.acquire()
        fake.gate.release()
        assert follow.result()[0, 0] == 4.0
        assert ["q3"] not in fake.batches


def test_full_queue_refuses_with_overloaded(fake: GatedEncoder) -> None:
    with batcher(fake, max_queue=2) as encoder:
        hold_worker(encoder, fake)
        queued = [encoder.submit(["q1"]), encoder.submit(["q2"])]
        with pytest.raises(OverloadedError):
            encoder.submit(["q3"])
        assert encoder.stats().rejected == 1
        fake.gate.release()
        fake.entered.acquire()
        fake.gate.release()
        assert [f.result()[0, 0] for f in queued] == [1.0, 2.0]
        # Room again once the queue drained.
        again = encoder.submit(["q5"])
        fake.entered.acquire()
        fake.gate.release()
        assert again.result()[0, 0] == 5.0


def test_encoder_failure_reaches_every_caller_of_the_batch(fake: GatedEncoder) -> None:
    with batcher(fake) as encoder:
        hold_worker(encoder, fake)
        futures = [encoder.submit(["q1"]), encoder.submit(["q2"])]
        fake.gate.release()
        fake.entered.acquire()
        fake.fail_next = True
        fake.gate.release()
        for future in futures:
            with pytest.raises(RuntimeError, match="boom"):
                future.result()


def test_concurrent_callers_each_get_their_own_rows(fake: GatedEncoder) -> None:
    with batcher(fake, max_batch_size=8) as encoder:
        for _ in range(200):
            fake.gate.release()
        with ThreadPoolExecutor(16) as pool:
            rows = list(pool.map(lambda i: encoder.encode_queries([f"q{i}"]), range(100)))
        assert [r[0, 0] for r in rows] == list(range(100))
        assert sum(len(b) for b in fake.batches) == 100
        assert max(len(b) for b in fake.batches) <= 8


def test_empty_request_and_passthrough(fake: GatedEncoder) -> None:
    with batcher(fake) as encoder:
        assert encoder.encode_queries([]).shape == (0, DIM)
        assert encoder.encode_documents(["q2"])[0, 0] == 2.0
        assert (encoder.model_id, encoder.dimension) == ("fake", DIM)
        assert fake.batches == []


def test_close_cancels_queued_requests(fake: GatedEncoder) -> None:
    encoder = BatchingEncoder(fake)
    hold_worker(encoder, fake)
    queued = encoder.submit(["q1"])
    closer = threading.Thread(target=encoder.close)
    closer.start()
    fake.gate.release()
    closer.join(timeout=30)
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        encoder.submit(["q2"])


@pytest.mark.parametrize("limits", [{"max_batch_size": 0}, {"max_queue": 0}, {"max_wait_us": -1}])
def test_invalid_limits(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BatchingSettings(**limits)
