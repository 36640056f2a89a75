"""In-process measurements: the engine without gRPC, raw components, the compute limit, nDCG.

Limit model (2-core box): encoding (onnxruntime) and the matrix product (BLAS) use every
core, so their per-query cost is wall time of one batch / batch size; BM25 (tantivy) and
fusion are single-threaded per query and run side by side on all cores. Hence

    limit_qps = 1 / (encode(b)/b + product(b)/b + (sparse + fusion_fetch) / cores)

with b the batch the server can form at that concurrency, min(concurrency, max_batch_size).
Encoders run without pool spinning, as `hybridsearch serve` does by default.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import percentiles_ms
from hybridsearch.config import Device
from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.engine import HybridSearcher
from hybridsearch.eval.metrics import evaluate
from hybridsearch.loader import load_query_encoder
from hybridsearch.sparse.analysis import term_counts
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Query, RetrievalMode

DEPTH = 1000  # server default per-arm depth in hybrid mode


def open_engine(index_dir: Path, model: Path | None) -> HybridSearcher:
    """The engine over ``index_dir`` with the raw ONNX encoder (no batcher)."""
    index = open_index(index_dir)
    encoder = None
    if model is not None and index.manifest.encoder is not None:
        encoder = load_query_encoder(
            model, Device.CPU, max_length=index.manifest.encoder.max_length, spinning=False
        )
    return HybridSearcher(index, encoder)


@dataclass
class EngineLatency:
    """Sequential in-process latency of one mode, with mean stage times (µs)."""

    mode: str
    count: int
    qps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    stages_us: dict[str, float] = field(default_factory=dict)


def engine_latency(
    engine: HybridSearcher, queries: list[str], mode: str, *, top_k: int = 10, min_s: float = 5
) -> EngineLatency:
    """Run queries one after another (cycling, at least ``min_s`` seconds)."""
    retrieval = RetrievalMode[mode.upper()]
    for text in queries[:5]:  # warm-up
        engine.search(Query(text=text, top_k=top_k, mode=retrieval))
    latencies: list[float] = []
    stages: dict[str, list[int]] = {s: [] for s in ("encode", "dense", "sparse", "fusion", "fetch")}
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < min_s or i < len(queries):
        text = queries[i % len(queries)]
        t0 = time.perf_counter()
        result = engine.search(Query(text=text, top_k=top_k, mode=retrieval))
        latencies.append(time.perf_counter() - t0)
        for name, values in stages.items():
            values.append(getattr(result.timings, f"{name}_us"))
        i += 1
    elapsed = time.perf_counter() - started
    p = percentiles_ms(latencies)
    return EngineLatency(
        mode=mode,
        count=len(latencies),
        qps=len(latencies) / elapsed,
        p50_ms=p["p50"],
        p95_ms=p["p95"],
        p99_ms=p["p99"],
        stages_us={k: float(np.mean(v)) for k, v in stages.items()},
    )


@dataclass
class ComponentCosts:
    """Per-query wall time (ms) of each raw component; encode and product per batch size."""

    encode_ms: dict[int, float]
    product_ms: dict[int, float]
    sparse_hybrid_ms: float  # BM25 top-1000 (hybrid depth)
    sparse_top10_ms: float  # BM25 top-10 (sparse mode)
    fusion_fetch_ms: float  # fusion + id mapping, from the engine's stage timings
    cores: int
    # CPU time (all threads) per query of the same runs: unlike wall time it does not grow
    # when other jobs take the cores, so cpu_limit_qps is the steadier limit on a shared box.
    encode_cpu_ms: dict[int, float] = field(default_factory=dict)
    product_cpu_ms: dict[int, float] = field(default_factory=dict)
    sparse_hybrid_cpu_ms: float = 0.0

    def cpu_ms_per_query(self, batch: int) -> float:
        """CPU ms of the raw components of one hybrid query at batch ``batch``."""
        b = max(k for k in self.encode_cpu_ms if k <= batch)
        return (
            self.encode_cpu_ms[b]
            + self.product_cpu_ms[b]
            + self.sparse_hybrid_cpu_ms
            + self.fusion_fetch_ms
        )

    def limit_qps(self, mode: str, batch: int) -> float:
        """Compute limit of ``mode`` when the server forms batches of ``batch`` queries."""
        b = max(k for k in self.encode_ms if k <= batch)
        if mode == "sparse":
            return self.cores / self.sparse_top10_ms * 1000
        dense = self.encode_ms[b] + self.product_ms[b]
        if mode == "dense":
            return 1000 / dense
        return 1000 / (dense + (self.sparse_hybrid_ms + self.fusion_fetch_ms) / self.cores)


def component_costs(
    index_dir: Path,
    model: Path,
    queries: list[str],
    batch_sizes: tuple[int, ...],
    fusion_fetch_ms: float,
    *,
    repeats: int = 2,
) -> ComponentCosts:
    """Time onnxruntime encoding, the exact product and tantivy search on ``queries``."""
    index = open_index(index_dir)
    assert index.manifest.encoder is not None and index.vectors is not None
    encoder = load_query_encoder(
        model, Device.CPU, max_length=index.manifest.encoder.max_length, spinning=False
    )
    dense = ExactDenseIndex(index.vectors)
    encode_ms: dict[int, float] = {}
    product_ms: dict[int, float] = {}
    encode_cpu: dict[int, float] = {}
    product_cpu: dict[int, float] = {}
    vectors = encoder.encode_queries(queries)  # also warms up
    n = len(queries)
    for b in batch_sizes:
        best = [float("inf")] * 4
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(0, n, b):
                encoder.encode_queries(queries[i : i + b])
            t1, c1 = time.perf_counter(), time.process_time()
            for i in range(0, n, b):
                dense.search(vectors[i : i + b], DEPTH)
            t2, c2 = time.perf_counter(), time.process_time()
            run = [(t1 - t0), (t2 - t1), (c1 - c0), (c2 - c1)]
            best = [min(x, y / n * 1000) for x, y in zip(best, run, strict=True)]
        encode_ms[b], product_ms[b], encode_cpu[b], product_cpu[b] = best
    weights = [{t: float(n) for t, n in term_counts(q).items()} for q in queries]
    sparse_ms = {}
    sparse_cpu = float("inf")
    for depth in (DEPTH, 10):
        best_wall = float("inf")
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            for w in weights:
                index.sparse.search(w, depth)
            best_wall = min(best_wall, (time.perf_counter() - t0) / n * 1000)
            if depth == DEPTH:
                sparse_cpu = min(sparse_cpu, (time.process_time() - c0) / n * 1000)
        sparse_ms[depth] = best_wall
    return ComponentCosts(
        encode_ms=encode_ms,
        product_ms=product_ms,
        sparse_hybrid_ms=sparse_ms[DEPTH],
        sparse_top10_ms=sparse_ms[10],
        fusion_fetch_ms=fusion_fetch_ms,
        cores=os.cpu_count() or 1,
        encode_cpu_ms=encode_cpu,
        product_cpu_ms=product_cpu,
        sparse_hybrid_cpu_ms=sparse_cpu,
    )


def ndcg10(engine: HybridSearcher, queries: list[tuple[str, str]], qrels: dict, mode: str) -> float:
    """nDCG@10 of the engine in ``mode`` with server defaults (depth 1000 per arm)."""
    retrieval = RetrievalMode[mode.upper()]
    run = {}
    for qid, text in queries:
        result = engine.search(Query(text=text, top_k=10, mode=retrieval))
        run[qid] = {hit.id: hit.score for hit in result.hits}
    return evaluate(run, qrels)["nDCG@10"]
