"""DenseArm: a micro-batch of jobs costs one encoder run and one dense search per index
snapshot, and every job gets exactly the rows a search of its own would give."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.encoders.onnx_encoder import load_encoder
from hybridsearch.engine.batching import BatchingSettings, CancelScope, cancel_scope
from hybridsearch.engine.dense_arm import DenseArm, DenseArmResult, DenseJob
from hybridsearch.errors import OverloadedError
from hybridsearch.types import ScoredDoc

DIM = 8
ROWS = 60


class GatedEncoder:
    """Deterministic vectors per text; while ``hold`` is set, a run waits for the gate."""

    model_id = "fake"
    dimension = DIM
    provider = "CPUExecutionProvider"

    def __init__(self) -> None:
        self.runs: list[list[str]] = []
        self.hold = False
        self.gate = threading.Semaphore(0)
        self.entered = threading.Semaphore(0)
        self.fail = False

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.runs.append(list(texts))
        if self.hold:
            self.entered.release()
            self.gate.acquire()
        if self.fail:
            raise RuntimeError("encoder broke")
        return np.stack([vector_of(t) for t in texts])

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return self.encode_queries(texts)


def vector_of(text: str) -> NDArray[np.float32]:
    rng = np.random.default_rng(sum(text.encode()))
    return rng.standard_normal(DIM).astype(np.float32)


class CountingIndex:
    """An exact index that counts its searches and the query rows each got."""

    def __init__(self, matrix: NDArray[np.float32]) -> None:
        self.exact = ExactDenseIndex(matrix)
        self.calls: list[int] = []

    @property
    def dimension(self) -> int:
        return DIM

    def search(
        self, queries: NDArray[np.float32], k: int, live: NDArray[np.bool_] | None = None
    ) -> list[list[ScoredDoc]]:
        self.calls.append(len(queries))
        return self.exact.search(queries, k, live)


@pytest.fixture
def matrix() -> NDArray[np.float32]:
    return np.random.default_rng(3).standard_normal((ROWS, DIM)).astype(np.float32)


def expected(matrix: NDArray[np.float32], job: DenseJob) -> list[list[ScoredDoc]]:
    """What searching this job alone gives."""
    exact = ExactDenseIndex(matrix)
    return [
        exact.search(vector_of(t)[None, :], d, job.live)[0]
        for t, d in zip(job.texts, job.depths, strict=True)
    ]


def assert_same_lists(actual: list[list[ScoredDoc]], wanted: list[list[ScoredDoc]]) -> None:
    """Same ordinals; scores equal up to float32 rounding (a product of several query rows
    runs another BLAS kernel than one row alone, which can change the last bit)."""
    assert [[d.ordinal for d in hits] for hits in actual] == [
        [d.ordinal for d in hits] for hits in wanted
    ]
    for hits, wanted_hits in zip(actual, wanted, strict=True):
        np.testing.assert_allclose(
            [d.score for d in hits], [d.score for d in wanted_hits], rtol=1e-6, atol=1e-6
        )


def held_batch(
    arm: DenseArm, encoder: GatedEncoder, index: CountingIndex, jobs: list[DenseJob]
) -> list[Future[DenseArmResult]]:
    """Hold the batcher inside a first job, queue ``jobs``, then let everything run."""
    encoder.hold = True
    first = arm.start(DenseJob(["warm"], [3], index, None))
    encoder.entered.acquire()
    futures = [arm.start(job) for job in jobs]
    encoder.hold = False
    encoder.gate.release()
    first.result(timeout=30)
    return futures


def test_a_batch_is_one_encoder_run_and_one_search(matrix: NDArray[np.float32]) -> None:
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    arm = DenseArm(encoder, BatchingSettings(max_batch_size=16, max_batch_tokens=10_000))
    try:
        jobs = [
            DenseJob(["alpha", "beta gamma"], [5, 20], index, None),
            DenseJob(["delta"], [ROWS + 10], index, None),
            DenseJob(["epsilon zeta", "eta", "theta"], [1, 7, 0], index, None),
        ]
        futures = held_batch(arm, encoder, index, jobs)
        results = [f.result(timeout=30) for f in futures]
    finally:
        arm.close()
    assert len(encoder.runs) == 2  # the held job, then the three queued ones together
    assert sorted(encoder.runs[1]) == sorted(t for job in jobs for t in job.texts)
    assert index.calls == [1, 6]  # one search for all six queries of the batch
    for job, result in zip(jobs, results, strict=True):
        assert_same_lists(result.lists, expected(matrix, job))
        np.testing.assert_array_equal(result.vectors, np.stack([vector_of(t) for t in job.texts]))
    stats = arm.stats()
    assert stats is not None and (stats.batches, stats.texts) == (2, 7)


def test_jobs_on_different_snapshots_search_separately(matrix: NDArray[np.float32]) -> None:
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    other = CountingIndex(matrix)
    live = np.arange(ROWS) % 3 != 0  # a later snapshot: every third row deleted
    arm = DenseArm(encoder, BatchingSettings(max_batch_size=16, max_batch_tokens=10_000))
    try:
        jobs = [
            DenseJob(["alpha"], [10], index, None),
            DenseJob(["beta"], [10], index, live),
            DenseJob(["gamma"], [10], other, None),
            DenseJob(["delta"], [10], index, None),
        ]
        futures = held_batch(arm, encoder, index, jobs)
        results = [f.result(timeout=30) for f in futures]
    finally:
        arm.close()
    assert len(encoder.runs) == 2
    assert index.calls == [1, 2, 1] and other.calls == [1]  # held, (alpha, delta), beta
    for job, result in zip(jobs, results, strict=True):
        assert_same_lists(result.lists, expected(matrix, job))
    assert all(d.ordinal % 3 != 0 for d in results[1].lists[0])


def test_unbatched_jobs_run_alone(matrix: NDArray[np.float32]) -> None:
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    arm = DenseArm(encoder, None, threads=2)
    try:
        jobs = [DenseJob([f"q{i}"], [4], index, None) for i in range(5)]
        results = [f.result(timeout=30) for f in [arm.start(job) for job in jobs]]
    finally:
        arm.close()
    assert len(encoder.runs) == 5 and index.calls == [1] * 5
    assert arm.stats() is None
    for job, result in zip(jobs, results, strict=True):
        assert_same_lists(result.lists, expected(matrix, job))


def test_an_encoder_failure_reaches_every_job(matrix: NDArray[np.float32]) -> None:
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    arm = DenseArm(encoder, BatchingSettings())
    try:
        encoder.fail = True
        futures = [arm.start(DenseJob([f"q{i}"], [3], index, None)) for i in range(3)]
        for future in futures:
            with pytest.raises(RuntimeError, match="encoder broke"):
                future.result(timeout=30)
    finally:
        arm.close()
    assert index.calls == []


def test_a_job_larger_than_a_batch_goes_as_batches_and_joins(
    matrix: NDArray[np.float32],
) -> None:
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    arm = DenseArm(encoder, BatchingSettings(max_batch_size=2, max_batch_tokens=10_000))
    job = DenseJob(["a", "bb", "ccc", "dddd", "eeeee"], [3, 4, 5, 6, 7], index, None)
    try:
        result = arm.start(job).result(timeout=30)
    finally:
        arm.close()
    assert [len(run) for run in encoder.runs] == [2, 2, 1]
    assert_same_lists(result.lists, expected(matrix, job))
    np.testing.assert_array_equal(result.vectors, np.stack([vector_of(t) for t in job.texts]))


def test_a_cancelled_large_job_stops_after_the_batch_it_is_in(
    matrix: NDArray[np.float32],
) -> None:
    """A BatchSearch whose caller went away: its texts not yet encoded are dropped, and the
    next caller's query runs next (one job of 256 long queries held the encoder for 40 s)."""
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    arm = DenseArm(encoder, BatchingSettings(max_batch_size=2, max_batch_tokens=10_000))
    scope = CancelScope()
    context = contextvars.copy_context()
    context.run(cancel_scope.set, scope)
    try:
        encoder.hold = True
        large = context.run(arm.start, DenseJob([f"q{i}" for i in range(8)], [3] * 8, index, None))
        encoder.entered.acquire()  # its first batch is being encoded
        scope.cancel()  # the call was cancelled, or its deadline passed
        encoder.hold = False
        encoder.gate.release()
        small = arm.start(DenseJob(["next caller"], [3], index, None)).result(timeout=30)
        with pytest.raises(CancelledError):
            large.result(timeout=30)
    finally:
        arm.close()
    assert encoder.runs == [["q0", "q1"], ["next caller"]]
    assert len(small.lists[0]) == 3


def test_a_split_job_takes_one_place_in_the_queue(matrix: NDArray[np.float32]) -> None:
    """Its parts queue together as one request: a queue of 2 holds a 10-query job and a
    single query (it refused the job outright, or once 8 full BatchSearches were queued,
    every other caller)."""
    encoder = GatedEncoder()
    index = CountingIndex(matrix)
    arm = DenseArm(encoder, BatchingSettings(max_batch_size=2, max_queue=2))
    try:
        encoder.hold = True
        first = arm.start(DenseJob(["warm"], [3], index, None))
        encoder.entered.acquire()  # the batcher is busy: what follows waits in the queue
        large = arm.start(DenseJob([f"q{i}" for i in range(10)], [3] * 10, index, None))
        small = arm.start(DenseJob(["single"], [3], index, None))
        stats = arm.stats()
        assert stats is not None and stats.queued == 2
        with pytest.raises(OverloadedError):
            arm.start(DenseJob(["one too many"], [3], index, None))
        encoder.hold = False
        encoder.gate.release()
        for future in (first, large, small):
            future.result(timeout=30)
    finally:
        arm.close()
    assert len(large.result().lists) == 10


class CountingTokenizer:
    """A real tokenizer that records every text it is asked to tokenise."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.texts: list[str] = []

    def encode(self, text: str) -> Any:
        self.texts.append(text)
        return self._tokenizer.encode(text)

    def encode_batch(self, texts: list[str]) -> Any:
        self.texts.extend(texts)
        return self._tokenizer.encode_batch(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def test_a_batched_query_is_tokenised_once(default_model_dir: Path) -> None:
    encoder = load_encoder(default_model_dir, device="cpu")
    counting = CountingTokenizer(encoder._tokenizer)
    encoder._tokenizer = counting  # type: ignore[assignment]
    arm = DenseArm(encoder, BatchingSettings(max_batch_size=8, max_batch_tokens=10_000))
    texts = ["heat transfer at hypersonic speed", "boundary layer", "shock waves in air"]
    try:
        futures = [arm.start(DenseJob([t], [0], None, None)) for t in texts]
        vectors = np.vstack([f.result(timeout=60).vectors for f in futures])
    finally:
        arm.close()
    assert sorted(counting.texts) == sorted(texts)  # for the batcher's length; not again
    np.testing.assert_array_equal(vectors, encoder.encode_queries(texts))
