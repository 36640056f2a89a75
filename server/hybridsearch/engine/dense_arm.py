"""The dense arm: query texts → query vectors → each query's best rows of a dense index.

With micro-batching, concurrent requests share one encoder run and one dense search (one
matrix product for an exact index) per batch::

    search threads ─ start(job) ─▶ MicroBatcher ─▶ encode every text of the batch at once
          ▲                                        ─▶ one dense.search per index snapshot
          └──────── Future[DenseArmResult] ◀────── ─▶ each job's rows, trimmed to its depths

Without batching each job runs alone on a small thread pool, so it still overlaps the
caller's BM25 search.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.base import DenseIndex
from hybridsearch.encoders.base import Encoder, QueryTokens
from hybridsearch.engine.batching import BatchingSettings, BatchStats, MicroBatcher, estimate_tokens
from hybridsearch.types import ScoredDoc, elapsed_us

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DenseJob:
    """One request's dense work: its query texts, the snapshot's index and live mask, and how
    many candidates each query wants.

    ``dense`` None: encode only (a sharded front, whose shards search the vectors); the
    result's lists are then empty. ``tokens``: the texts as the encoder tokenised them
    (`DenseArm.start` sets it when the encoder tokenises apart, `TokenizesQueries`), so a
    query is tokenised once: for its batch's length, then for the run.
    """

    texts: Sequence[str]
    depths: Sequence[int]
    dense: DenseIndex | None
    live: NDArray[np.bool_] | None
    tokens: Sequence[QueryTokens] | None = None


@dataclass(frozen=True, slots=True)
class DenseArmResult:
    """Per-query dense lists, query vectors and stage times of one job.

    ``encode_us[i]``, ``dense_us[i]``: the encoder run and the dense search that served query
    ``i``, shared with every other query of that run (other callers' included); a job split
    into parts (a large BatchSearch) ran its parts in different runs, each query has its own
    part's.
    """

    lists: list[Sequence[ScoredDoc]]
    vectors: NDArray[np.float32]
    encode_us: list[int]
    dense_us: list[int]


@runtime_checkable
class TokenizesQueries(Protocol):
    """An encoder that tokenises a query apart from running it: the batcher groups queries
    by their real token counts, and the batch runs on those tokens."""

    def tokenize_query(self, text: str) -> QueryTokens:
        """``text`` as the encoder sees a query."""
        ...

    def encode_query_tokens(self, queries: Sequence[QueryTokens]) -> NDArray[np.float32]:
        """`Encoder.encode_queries` for tokenised queries."""
        ...


class DenseArm:
    """Starts dense jobs; with ``batching`` concurrent jobs share encoder runs and searches."""

    def __init__(
        self,
        encoder: Encoder,
        batching: BatchingSettings | None = None,
        *,
        threads: int = 4,
    ) -> None:
        self._encoder = encoder
        # Real token counts when the encoder gives them: a character-length estimate groups
        # SciFact queries into batches padded 31 % more (and 30 % more CPU per query).
        self._tokenizer: TokenizesQueries | None = (
            encoder if isinstance(encoder, TokenizesQueries) else None
        )
        self._batcher: MicroBatcher[DenseJob, DenseArmResult] | None = None
        self._pool: ThreadPoolExecutor | None = None
        if batching is not None:
            self._batcher = MicroBatcher(self.run_jobs, batching, name="query batcher")
        else:
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dense-arm")

    def start(self, job: DenseJob) -> Future[DenseArmResult]:
        """Begin ``job``; `OverloadedError` when the batcher's queue is full.

        Cancelling the request's `cancel_scope` before the job starts drops it.
        """
        if self._batcher is not None:
            if self._tokenizer is not None:
                tokens = [self._tokenizer.tokenize_query(t) for t in job.texts]
                job = dataclasses.replace(job, tokens=tokens)
            size = self._batcher.settings.max_batch_size
            if len(job.texts) <= size:
                _, texts, longest = _sized(job)
                return self._batcher.submit(job, size=texts, tokens=longest)
            # A BatchSearch's many queries go as jobs of one batch each (one place in the
            # queue): other callers' queries take turns with them, and a cancelled call drops
            # the parts not started yet (one job of 256 long queries held the encoder for 40 s
            # after its caller had gone).
            parts = [_part(job, start, start + size) for start in range(0, len(job.texts), size)]
            return _joined(self._batcher.submit_parts([_sized(part) for part in parts]))
        assert self._pool is not None
        context = contextvars.copy_context()
        return self._pool.submit(context.run, lambda: self.run_jobs([job])[0])

    def run_jobs(self, jobs: Sequence[DenseJob]) -> list[DenseArmResult]:
        """One encoder run for every text of ``jobs``, then one dense search per group of
        jobs on the same index snapshot (usually all of them); results in job order."""
        encode_started = time.perf_counter()
        vectors = self._encode(jobs)
        encode_us = elapsed_us(encode_started)
        log.debug("encoder run: %d texts in %d us", len(vectors), encode_us)
        offsets = np.cumsum([0, *(len(job.texts) for job in jobs)])
        results: dict[int, DenseArmResult] = {}
        for group in _same_snapshot(jobs):
            search_started = time.perf_counter()
            rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in group])
            lead = jobs[group[0]]
            depth = max(d for i in group for d in jobs[i].depths)
            found: list[Sequence[ScoredDoc]] = (
                [[] for _ in range(len(rows))]
                if lead.dense is None
                else list(lead.dense.search(vectors[rows], depth, lead.live))
            )
            lists = iter(found)
            dense_us = elapsed_us(search_started)
            log.debug("dense search: %d queries in %d us", len(rows), dense_us)
            for i in group:
                job = jobs[i]
                trimmed = [next(lists)[:d] for d in job.depths]
                job_vectors = vectors[offsets[i] : offsets[i + 1]]
                n = len(job.texts)
                results[i] = DenseArmResult(trimmed, job_vectors, [encode_us] * n, [dense_us] * n)
        return [results[i] for i in range(len(jobs))]

    def _encode(self, jobs: Sequence[DenseJob]) -> NDArray[np.float32]:
        """Every text of ``jobs``, in order: from the tokens `start` kept when each job has
        them, else from the texts."""
        tokenized = [job.tokens for job in jobs]
        if self._tokenizer is not None and all(t is not None for t in tokenized):
            return self._tokenizer.encode_query_tokens([t for ts in tokenized if ts for t in ts])
        return self._encoder.encode_queries([t for job in jobs for t in job.texts])

    def stats(self) -> BatchStats | None:
        """The batcher's counters (None without batching)."""
        return self._batcher.stats() if self._batcher is not None else None

    def close(self) -> None:
        """Stop the batcher (queued jobs are cancelled) or the pool."""
        if self._batcher is not None:
            self._batcher.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _sized(job: DenseJob) -> tuple[DenseJob, int, int]:
    """``job``, its texts and its longest text's tokens, as the batcher takes them."""
    if job.tokens is not None:
        longest = max((len(t) for t in job.tokens), default=0)
    else:
        longest = max((estimate_tokens(t) for t in job.texts), default=0)
    return job, len(job.texts), longest


def _part(job: DenseJob, start: int, stop: int) -> DenseJob:
    """The texts ``start:stop`` of ``job`` as a job of their own."""
    return dataclasses.replace(
        job,
        texts=job.texts[start:stop],
        depths=job.depths[start:stop],
        tokens=None if job.tokens is None else job.tokens[start:stop],
    )


def _joined(parts: Sequence[Future[DenseArmResult]]) -> Future[DenseArmResult]:
    """One future of the parts' results, in order: their lists, vectors and per-query stage
    times one after the other. The first part to fail (or be cancelled) ends it, and
    cancels the parts not started yet; cancelling it cancels them all."""
    joined: Future[DenseArmResult] = Future()
    lock = threading.RLock()  # `end` cancels parts, whose callbacks come back here
    left = [len(parts)]

    def settle(_: Future[DenseArmResult]) -> None:
        with lock:
            if joined.done():
                return
            failed = next((p for p in parts if p.done() and (p.cancelled() or p.exception())), None)
            if failed is not None:
                if failed.cancelled():
                    joined.cancel()
                else:
                    with contextlib.suppress(InvalidStateError):  # the caller cancelled it
                        joined.set_exception(failed.exception())
            else:
                left[0] -= 1
                if left[0] > 0:
                    return
                results = [p.result() for p in parts]
                with contextlib.suppress(InvalidStateError):  # the caller cancelled it
                    joined.set_result(
                        DenseArmResult(
                            [row for result in results for row in result.lists],
                            np.concatenate([result.vectors for result in results]),
                            [us for result in results for us in result.encode_us],
                            [us for result in results for us in result.dense_us],
                        )
                    )

    def end(_: Future[DenseArmResult]) -> None:
        if joined.cancelled() or joined.exception() is not None:
            for part in parts:  # a part already started runs to its end; the rest are dropped
                part.cancel()

    joined.add_done_callback(end)
    for part in parts:
        part.add_done_callback(settle)
    return joined


def _same_snapshot(jobs: Sequence[DenseJob]) -> list[list[int]]:
    """Job positions grouped by (dense index, live mask) identity, in order of appearance."""
    groups: list[list[int]] = []
    for i, job in enumerate(jobs):
        for group in groups:
            lead = jobs[group[0]]
            if lead.dense is job.dense and lead.live is job.live:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups
