"""The served query encoder, rebuilt from onnxruntime + tokenizers for the peers' own venvs,
and the timing helpers both peers share.

Same model directory (encoder.json, int8 ONNX, tokenizer), same mean pooling and L2
normalisation as hybridsearch's OnnxEncoder, so every system ranks with the same vectors.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


class MiniLM:
    """``encode(text)`` → unit float32 vector; ``encode_many(texts)`` → matrix."""

    def __init__(self, model_dir: Path, intra_op_threads: int | None = None) -> None:
        config = json.loads((model_dir / "encoder.json").read_text(encoding="utf-8"))
        self.prefix = config.get("query_prefix", "")
        self.tokenizer = Tokenizer.from_file(str(model_dir / config["tokenizer_file"]))
        self.tokenizer.enable_truncation(int(config["max_length"]))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        # As `hybridsearch serve` runs it: idle pool threads sleep instead of spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if intra_op_threads is not None:
            # The concurrent recipe: each caller thread encodes its own query on one core
            # (ORT then runs the graph on the calling thread, no pool of its own), instead of
            # N callers each fanning out over every core.
            options.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(
            str(model_dir / config["onnx_file"]), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = config["output_name"]

    def encode_many(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([self.prefix + t for t in texts])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (hidden,) = self.session.run([self.output], {n: feeds[n] for n in self.inputs})
        mask = feeds["attention_mask"].astype(np.float32)[:, :, None]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        vectors: np.ndarray = pooled.astype(np.float32)
        return vectors

    def encode(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.encode_many([text])[0]
        return vector


def timed_percentiles(latencies_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    ms = np.array(latencies_s) * 1000
    return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def write_run(path: Path, run: dict[str, list[tuple[str, float]]], tag: str) -> None:
    """A TREC run file (qid Q0 docid rank score tag)."""
    with path.open("w", encoding="utf-8") as out:
        for qid, hits in run.items():
            for rank, (docid, score) in enumerate(hits, 1):
                out.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")


Hits = list[tuple[str, float]]
Search = Callable[[str], Hits]

# Concurrent clients per measurement, and the least wall time of one (all queries at least once).
CONCURRENCY = (2, 4)
MIN_CONCURRENT_S = 8.0
# What the result JSON says about the query encoder's ONNX Runtime threads.
ENCODER_THREADS = {"sequential": "default", "concurrent": 1}


def measure_sequential(
    search: Search, queries: list[list[str]], run_path: Path, tag: str
) -> tuple[dict[str, Hits], dict[str, object]]:
    """One query at a time, after 5 warm-up queries; writes the scored TREC run."""
    for _, text in queries[:5]:
        search(text)
    run: dict[str, Hits] = {}
    latencies = []
    t0 = time.perf_counter()
    for qid, text in queries:
        q0 = time.perf_counter()
        run[qid] = search(text)
        latencies.append(time.perf_counter() - q0)
    elapsed = time.perf_counter() - t0
    write_run(run_path, run, tag)
    stats = {"qps": len(queries) / elapsed, **timed_percentiles(latencies), "run": str(run_path)}
    return run, stats


@dataclass
class ConcurrentRun:
    qps: float
    queries: int
    seconds: float
    first_pass: dict[int, Hits]  # hits by query index, for the queries' first round


def run_concurrently(
    search: Search,
    texts: list[str],
    threads: int,
    min_seconds: float = MIN_CONCURRENT_S,
    on_thread_end: Callable[[], None] | None = None,
) -> ConcurrentRun:
    """``threads`` threads each run whole queries (``search(text)``) from one shared cursor,
    cycling the queries until every query ran once and ``min_seconds`` passed.

    Each thread runs one warm-up query before the clock starts (first use of a thread can
    cost extra: JVM attach, thread-local state). ``on_thread_end`` runs last on every thread
    (pyjnius: detach the thread from the JVM).
    """
    n = len(texts)
    lock = threading.Lock()
    cursor = 0
    started = 0.0
    counts = [0] * threads
    first_pass: dict[int, Hits] = {}
    errors: list[BaseException] = []

    def start_clock() -> None:
        nonlocal started
        started = time.perf_counter()

    barrier = threading.Barrier(threads, action=start_clock)

    def claim() -> int | None:
        nonlocal cursor
        with lock:
            index = cursor
            cursor += 1
        if errors or (index >= n and time.perf_counter() - started >= min_seconds):
            return None  # done, or another thread failed: stop early
        return index

    def worker(slot: int) -> None:
        try:
            search(texts[slot % n])
            barrier.wait()
            while (index := claim()) is not None:
                hits = search(texts[index % n])
                if index < n:
                    first_pass[index] = hits
                counts[slot] += 1
        except BaseException as exc:  # re-raised on the calling thread
            errors.append(exc)
            barrier.abort()  # release the others instead of leaving them waiting
        finally:
            if on_thread_end is not None:
                on_thread_end()

    pool = [threading.Thread(target=worker, args=(s,), name=f"query-{s}") for s in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        # The first failure, not the BrokenBarrierError it caused in the other threads.
        causes = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
        raise (causes or errors)[0]
    done = sum(counts)
    return ConcurrentRun(done / elapsed, done, elapsed, first_pass)


def measure_concurrent(
    search: Search,
    queries: list[list[str]],
    sequential_run: dict[str, Hits],
    on_thread_end: Callable[[], None] | None = None,
) -> dict[str, object]:
    """``{"concurrent": {"2": qps, "4": qps}, "concurrent_same_top10": {...}}``, or
    ``{"concurrent_error": ...}`` so that a failure here keeps the sequential figures.

    ``concurrent_same_top10`` (share of queries whose top-10 docids equal the sequential run's)
    checks that concurrent callers get their own answers; the concurrent encoder's one-thread
    session may differ in the last bits, which can swap near-tied ranks.
    """
    texts = [text for _, text in queries]
    qps: dict[str, float] = {}
    same: dict[str, float] = {}
    try:
        for threads in CONCURRENCY:
            measured = run_concurrently(search, texts, threads, on_thread_end=on_thread_end)
            qps[str(threads)] = measured.qps
            same[str(threads)] = same_top10(queries, sequential_run, measured.first_pass)
    except Exception as exc:  # recorded in the result instead
        return {"concurrent": qps, "concurrent_error": f"{type(exc).__name__}: {exc}"}
    return {"concurrent": qps, "concurrent_same_top10": same}


def same_top10(
    queries: list[list[str]], sequential_run: dict[str, Hits], first_pass: dict[int, Hits]
) -> float:
    """Share of queries whose concurrent top-10 docids equal the sequential ones, in order."""
    equal = sum(
        [d for d, _ in first_pass.get(i, [])] == [d for d, _ in sequential_run[qid]]
        for i, (qid, _) in enumerate(queries)
    )
    return equal / len(queries)
