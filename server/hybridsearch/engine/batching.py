"""`MicroBatcher`: concurrent requests gathered into one run of a batch function.

Callers on many threads `submit` a job; one worker thread takes jobs off a bounded queue and
runs ``run_batch`` once for a batch of them::

    caller threads ──▶ bounded queue ──▶ worker: the oldest job, then the waiting jobs
         ▲                 │ full:         closest to it in length, within
         │                 ▼               max_batch_size texts and max_batch_tokens
         └── result ◀── OverloadedError    padded tokens ──▶ run_batch(jobs)

* Length grouping: a batch runs padded to its longest text, so it is filled with the jobs
  nearest the oldest one's length. On CPU padding is what makes batches expensive: MiniLM
  costs 7.7 ms per query alone, 6.1 ms per query in length-sorted batches of 8 and 11 ms in
  batches of 8 taken in arrival order (SciFact queries; see bench/).
* Fairness: the oldest waiting job is always in the next batch, so none starves.
* Backpressure: at most ``max_queue`` jobs wait; one more raises `OverloadedError`
  (RESOURCE_EXHAUSTED at the API) instead of growing the queue.
* Cancellation: a job whose future is cancelled, or whose request's `CancelScope` is
  cancelled (its RPC was cancelled or its deadline passed), is dropped before its batch runs
  and no longer counts against ``max_queue``.
* ``max_wait_us = 0`` batches greedily: what queued while the previous batch ran forms the
  next one, so a lone request never waits and load forms batches by itself. A positive value
  lets the oldest job wait up to that long for company while the batch is not full.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hybridsearch.errors import OverloadedError

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


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
    """Limits of one `MicroBatcher`."""

    max_batch_size: int = 8  # texts per run
    max_wait_us: int = 0  # how long the oldest waiting job may wait for company
    max_batch_tokens: int = 512  # padded tokens per run: texts x longest text (estimated)
    max_queue: int = 256  # jobs waiting; one more is refused

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_batch_tokens", "max_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_us < 0:
            raise ValueError(f"max_wait_us must be >= 0, got {self.max_wait_us}")


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Counters since start: runs, texts in them, jobs refused or dropped; jobs queued now."""

    batches: int
    texts: int
    rejected: int
    cancelled: int
    queued: int = 0

    @property
    def mean_batch_size(self) -> float:
        """Texts per run."""
        return self.texts / self.batches if self.batches else 0.0


def total_stats(stats: Iterable[BatchStats]) -> BatchStats | None:
    """The counters of several batchers added up (None: no batcher)."""
    each = list(stats)
    if not each:
        return None
    return BatchStats(
        batches=sum(s.batches for s in each),
        texts=sum(s.texts for s in each),
        rejected=sum(s.rejected for s in each),
        cancelled=sum(s.cancelled for s in each),
        queued=sum(s.queued for s in each),
    )


@dataclass(slots=True)
class _Waiting(Generic[J, R]):
    job: J
    size: int  # texts
    tokens: int  # estimated tokens of the job's longest text
    seq: int  # arrival order
    queued_at: float
    group: int  # the parts of one call share it: together they take one place in the queue
    future: Future[R] = field(default_factory=Future)


class MicroBatcher(Generic[J, R]):
    """Runs ``run_batch(jobs) -> results`` (one result per job, same order) on one thread."""

    def __init__(
        self,
        run_batch: Callable[[list[J]], Sequence[R]],
        settings: BatchingSettings | None = None,
        *,
        name: str = "micro-batcher",
    ) -> None:
        self._run_batch = run_batch
        self._settings = settings or BatchingSettings()
        self._name = name
        self._waiting: list[_Waiting[J, R]] = []  # arrival order
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._batches = self._texts = self._rejected = self._cancelled = 0
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    @property
    def settings(self) -> BatchingSettings:
        """The limits in force."""
        return self._settings

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (the parts of one `submit_parts` count once)."""
        with self._cond:
            return self._requests_waiting()

    def stats(self) -> BatchStats:
        """Counters since start."""
        with self._cond:
            return BatchStats(
                self._batches,
                self._texts,
                self._rejected,
                self._cancelled,
                self._requests_waiting(),
            )

    def submit(self, job: J, *, size: int, tokens: int) -> Future[R]:
        """Queue ``job`` (``size`` texts, the longest about ``tokens`` tokens).

        Raises `OverloadedError` when the queue is full. Cancelling the returned future, or
        the calling request's `cancel_scope`, before the job's batch starts drops the job.
        """
        return self.submit_parts([(job, size, tokens)])[0]

    def submit_parts(self, parts: Sequence[tuple[J, int, int]]) -> list[Future[R]]:
        """Queue the parts of one request, each ``(job, size, tokens)`` as for `submit`: each
        runs in a batch of its own choosing, but together they take one place in the queue
        (a request's place must not grow with how finely it is split)."""
        now = time.monotonic()
        group = next(self._seq)
        waiting: list[_Waiting[J, R]] = [
            _Waiting(job, size, tokens, next(self._seq), now, group) for job, size, tokens in parts
        ]
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            if self._requests_waiting() >= self._settings.max_queue:
                self._drop_cancelled()  # a cancelled caller does not hold a slot
            if self._requests_waiting() >= self._settings.max_queue:
                self._rejected += 1
                raise OverloadedError(
                    f"query encoder queue full ({self._settings.max_queue} requests waiting); "
                    "retry with backoff"
                )
            self._waiting.extend(waiting)
            self._cond.notify()
        scope = cancel_scope.get()
        if scope is not None:
            for part in waiting:
                scope.on_cancel(part.future.cancel)
        return [part.future for part in waiting]

    def _requests_waiting(self) -> int:
        return len({w.group for w in self._waiting})

    def close(self) -> None:
        """Stop the worker; jobs still queued are cancelled."""
        with self._cond:
            self._closed = True
            pending, self._waiting = self._waiting, []
            self._cond.notify_all()
        for waiting in pending:
            waiting.future.cancel()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=5)
        stats = self.stats()
        log.info(
            "%s: %d runs, %d queries, mean batch %.2f, %d refused, %d dropped",
            self._name,
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
            try:
                results = self._run_batch([w.job for w in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"run_batch returned {len(results)} results for {len(batch)} jobs"
                    )
            except BaseException as exc:  # every waiting caller learns of the failure
                for waiting in batch:
                    waiting.future.set_exception(exc)
                continue
            for waiting, result in zip(batch, results, strict=True):
                waiting.future.set_result(result)

    def _next_batch(self) -> list[_Waiting[J, R]] | None:
        """The next batch (started: no longer cancellable), or None once closed."""
        max_wait_s = self._settings.max_wait_us / 1e6
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._drop_cancelled()
                if not self._waiting:
                    self._cond.wait()
                    continue
                if max_wait_s > 0 and sum(w.size for w in self._waiting) < (
                    self._settings.max_batch_size
                ):
                    remaining = self._waiting[0].queued_at + max_wait_s - time.monotonic()
                    if remaining > 0:
                        self._cond.wait(remaining)
                        continue
                return self._start(self._select())

    def _drop_cancelled(self) -> None:
        kept = [w for w in self._waiting if not w.future.cancelled()]
        self._cancelled += len(self._waiting) - len(kept)
        self._waiting = kept

    def _select(self) -> list[_Waiting[J, R]]:
        """The oldest job, then the others nearest its length while the limits allow."""
        limits = self._settings
        oldest = self._waiting[0]
        chosen = [oldest]
        size, longest = oldest.size, oldest.tokens
        others = sorted(
            self._waiting[1:], key=lambda w: (abs(w.tokens - oldest.tokens), w.tokens, w.seq)
        )
        for waiting in others:
            if size >= limits.max_batch_size:
                break
            new_size = size + waiting.size
            new_longest = max(longest, waiting.tokens)
            if new_size <= limits.max_batch_size and new_size * new_longest <= (
                limits.max_batch_tokens
            ):
                chosen.append(waiting)
                size, longest = new_size, new_longest
        taken = {id(w) for w in chosen}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        return sorted(chosen, key=lambda w: w.seq)

    def _start(self, batch: list[_Waiting[J, R]]) -> list[_Waiting[J, R]]:
        # Jobs cancelled since selection are dropped here; the rest can no longer be cancelled.
        started = [w for w in batch if w.future.set_running_or_notify_cancel()]
        self._cancelled += len(batch) - len(started)
        if started:
            self._batches += 1
            self._texts += sum(w.size for w in started)
        return started
