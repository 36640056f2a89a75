"""`BatchingEncoder`: concurrent query encodings gathered into one encoder run.

Callers on many threads call ``encode_queries``; one worker thread takes what is queued and
runs the wrapped encoder once for all of it::

    caller threads ──▶ bounded queue ──▶ worker: gather ≤ max_batch_size texts,
         ▲                 │ full:         ≤ max_batch_tokens padded tokens,
         │                 ▼               wait ≤ max_wait_us for more
         └── rows ◀── OverloadedError      ──▶ inner.encode_queries(all texts)

* Backpressure: at most ``max_queue`` requests wait; one more raises `OverloadedError`
  (RESOURCE_EXHAUSTED at the API) instead of growing the queue.
* Cancellation: a request whose `CancelScope` is cancelled while it waits (its RPC was
  cancelled or its deadline passed) is dropped before its batch runs; its caller gets
  `concurrent.futures.CancelledError`.
* ``max_wait_us = 0`` batches greedily: whatever queued while the previous batch ran goes into
  the next one, so a lone request never waits and load forms batches by itself.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hybridsearch.encoders.base import Encoder
from hybridsearch.errors import OverloadedError

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """A cheap token estimate: about 4 characters per word piece, plus [CLS] and [SEP]."""
    return len(text) // 4 + 2


class CancelScope:
    """A cancellation flag a request carries into worker threads (see `cancel_scope`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called."""
        return self._cancelled

    def cancel(self) -> None:
        """Cancel; runs the registered callbacks once."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on cancellation (at once when already cancelled)."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)
                return
        callback()


# The scope of the request the current thread works for; set by the API layer, copied into
# worker threads with `contextvars.copy_context()`.
cancel_scope: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar(
    "cancel_scope", default=None
)


@dataclass(frozen=True, slots=True)
class BatchingSettings:
    """Limits of one `BatchingEncoder`."""

    # On CPU a batch saves little compute and padding costs (MiniLM int8, SciFact queries:
    # 8.9 ms CPU per query at batch 1, 9.8 at 8, 14.1 at 32), hence small batches by default.
    max_batch_size: int = 8  # texts per encoder run
    max_wait_us: int = 0  # how long the first request of a batch waits for company
    max_batch_tokens: int = 512  # padded tokens per run: texts x longest text (estimated)
    max_queue: int = 256  # requests waiting; one more is refused

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_batch_tokens", "max_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_us < 0:
            raise ValueError(f"max_wait_us must be >= 0, got {self.max_wait_us}")


@dataclass(slots=True)
class _Request:
    texts: list[str]
    longest_tokens: int
    future: Future[NDArray[np.float32]] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Counters since start: encoder runs, texts encoded, requests refused or dropped."""

    batches: int
    texts: int
    rejected: int
    cancelled: int

    @property
    def mean_batch_size(self) -> float:
        """Texts per encoder run."""
        return self.texts / self.batches if self.batches else 0.0


class BatchingEncoder:
    """An `Encoder` that gathers concurrent ``encode_queries`` calls into shared runs.

    ``encode_documents`` passes straight through (index builds batch on their own).
    """

    def __init__(
        self,
        inner: Encoder,
        settings: BatchingSettings | None = None,
        *,
        count_tokens: TokenCounter = estimate_tokens,
    ) -> None:
        self._inner = inner
        self._settings = settings or BatchingSettings()
        self._count_tokens = count_tokens
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._batches = self._texts = self._rejected = self._cancelled = 0
        self._worker = threading.Thread(target=self._run, name="encode-batcher", daemon=True)
        self._worker.start()

    @property
    def inner(self) -> Encoder:
        """The wrapped encoder."""
        return self._inner

    @property
    def settings(self) -> BatchingSettings:
        """The limits in force."""
        return self._settings

    @property
    def model_id(self) -> str:
        """The wrapped encoder's model id."""
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        """The wrapped encoder's dimension."""
        return self._inner.dimension

    @property
    def provider(self) -> str:
        """The wrapped encoder's execution provider."""
        return self._inner.provider

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        with self._cond:
            return len(self._queue)

    def stats(self) -> BatchStats:
        """Counters since start."""
        with self._cond:
            return BatchStats(self._batches, self._texts, self._rejected, self._cancelled)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        """Documents are encoded directly by the wrapped encoder."""
        return self._inner.encode_documents(texts, batch_size=batch_size)

    def submit(self, texts: Sequence[str]) -> Future[NDArray[np.float32]]:
        """Queue ``texts``; the future gets their rows. `OverloadedError` when the queue is full.

        Cancelling the future before its batch starts drops the request from the batch.
        """
        request = _Request(
            texts=list(texts),
            longest_tokens=max((self._count_tokens(t) for t in texts), default=0),
        )
        if not request.texts:
            request.future.set_result(np.empty((0, self.dimension), dtype=np.float32))
            return request.future
        with self._cond:
            if self._closed:
                raise RuntimeError("the encoder batcher is closed")
            if len(self._queue) >= self._settings.max_queue:
                self._rejected += 1
                raise OverloadedError(
                    f"query encoder queue full ({self._settings.max_queue} requests waiting); "
                    "retry with backoff"
                )
            self._queue.append(request)
            self._cond.notify()
        return request.future

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Encode queries in a shared batch; blocks until their rows are ready.

        Raises `OverloadedError` when the queue is full and `CancelledError` when the current
        `cancel_scope` is cancelled before the batch starts.
        """
        future = self.submit(texts)
        scope = cancel_scope.get()
        if scope is not None:
            scope.on_cancel(future.cancel)
        return future.result()

    def close(self) -> None:
        """Stop the worker; requests still queued are cancelled."""
        with self._cond:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for request in pending:
            request.future.cancel()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=5)
        stats = self.stats()
        log.info(
            "query encoder batcher: %d runs, %d queries, mean batch %.2f, %d refused, %d dropped",
            stats.batches,
            stats.texts,
            stats.mean_batch_size,
            stats.rejected,
            stats.cancelled,
        )

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            texts = [t for request in batch for t in request.texts]
            try:
                vectors = self._inner.encode_queries(texts)
            except BaseException as exc:  # every waiting caller learns of the failure
                for request in batch:
                    request.future.set_exception(exc)
                continue
            start = 0
            for request in batch:
                end = start + len(request.texts)
                request.future.set_result(vectors[start:end])
                start = end

    def _next_batch(self) -> list[_Request] | None:
        """The next batch (started: no longer cancellable), or None once closed."""
        limits = self._settings
        with self._cond:
            batch: list[_Request] = []
            size = longest = 0
            deadline: float | None = None
            while True:
                if self._closed:
                    for request in batch:
                        request.future.set_exception(CancelledError())
                    return None
                while self._queue:
                    request = self._queue[0]
                    if request.future.cancelled():
                        self._queue.popleft()
                        self._cancelled += 1
                        continue
                    new_size = size + len(request.texts)
                    new_longest = max(longest, request.longest_tokens)
                    fits = new_size <= limits.max_batch_size and (
                        new_size * new_longest <= limits.max_batch_tokens
                    )
                    if batch and not fits:
                        return self._start(batch)
                    self._queue.popleft()
                    batch.append(request)
                    size, longest = new_size, new_longest
                    if size >= limits.max_batch_size:
                        return self._start(batch)
                if batch:
                    if deadline is None:
                        deadline = time.monotonic() + limits.max_wait_us / 1e6
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return self._start(batch)
                    self._cond.wait(remaining)
                else:
                    self._cond.wait()

    def _start(self, batch: list[_Request]) -> list[_Request]:
        # Requests cancelled while the batch gathered are dropped here; the rest can no
        # longer be cancelled.
        started = [r for r in batch if r.future.set_running_or_notify_cancel()]
        self._cancelled += len(batch) - len(started)
        if started:
            self._batches += 1
            self._texts += sum(len(r.texts) for r in started)
        return started
