"""In-process measurements: the engine without gRPC, raw components, the compute limit, nDCG.

Compute limit: the CPU the raw components need per query (onnxruntime encoding at the
server's mean batch size, the exact product, tantivy, fusion), each on one thread, with
every core doing nothing else:

    limit_qps = cores * 1000 / (encode(b) + product(b) + bm25_top1000 + fusion)  [CPU ms]

b is the mean micro-batch size the server formed at that load point (its metrics).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridsearch.config import Device
from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.eval.metrics import evaluate
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.harness import percentiles_ms
from hybridsearch.sparse.analysis import query_term_counts
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.types import FusionSettings, Query, RetrievalMode

DEPTH = 1000  # server default per-arm depth in hybrid mode


def open_engine(index_dir: Path, model: Path | None, *, int8: bool = False) -> HybridSearcher:
    """The engine over ``index_dir`` with the raw ONNX encoder (no batcher)."""
    index = open_index(index_dir)
    encoder = None
    if model is not None and index.manifest.encoder is not None:
        encoder = load_query_encoder(
            model, Device.CPU, max_length=index.manifest.encoder.max_length, spinning=False,
            int8_queries=int8,
        )  # fmt: skip
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


BATCHES = (1, 2, 4, 8, 16, 32)


@dataclass
class ComponentCosts:
    """CPU ms per query of each raw component, on one thread each (the cheapest way to run
    them: a second onnxruntime thread costs ~25 % more CPU per query for lower latency).

    ``encode_cpu_ms[model][b]``: queries encoded in batches of ``b`` grouped by length, as the
    micro-batcher forms them; ``encode_arrival_cpu_ms[b]``: batches in arrival order (the
    full model), to show what the length grouping saves.
    """

    encode_cpu_ms: dict[str, dict[int, float]]
    encode_arrival_cpu_ms: dict[int, float]
    product_cpu_ms: dict[int, float]  # exact top-1000 per query, at batch b
    sparse_cpu_ms: dict[int, float]  # tantivy top-k per query, k = 10, 100, 1000
    fusion_cpu_ms: float  # fusing two 1000-lists into the top 10, plus id lookup
    cores: int

    def cpu_ms_per_query(self, mode: str, model: str, batch: float) -> float:
        """The components' CPU ms of one query of ``mode`` when batches average ``batch``."""
        if mode == "sparse":
            return self.sparse_cpu_ms[10]
        dense = _at(self.encode_cpu_ms[model], batch) + _at(self.product_cpu_ms, batch)
        if mode == "dense":
            return dense
        return dense + self.sparse_cpu_ms[1000] + self.fusion_cpu_ms

    def limit_qps(self, mode: str, model: str, batch: float) -> float:
        """The machine's compute limit: every core busy with nothing but the components."""
        return self.cores * 1000 / self.cpu_ms_per_query(mode, model, batch)


def _sparse_search(index: OpenIndex, depth: int, weights: dict[str, float]) -> object:
    return index.tantivy_reader.search(weights, depth)


def _at(per_batch: dict[int, float], batch: float) -> float:
    """Linear interpolation in log2(batch) between the measured batch sizes."""
    sizes = sorted(per_batch)
    x = np.log2(min(max(batch, sizes[0]), sizes[-1]))
    return float(np.interp(x, np.log2(sizes), [per_batch[b] for b in sizes]))


def _cpu_ms_per_item(fn: Callable[[Any], object], items: Sequence[Any], repeats: int = 2) -> float:
    """Best of ``repeats`` passes: CPU ms per item of ``fn(item)``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for item in items:
            fn(item)
        best = min(best, (time.process_time() - started) * 1000 / len(items))
    return best


def component_costs(
    index_dir: Path, models: dict[str, tuple[Path, bool]], queries: list[str]
) -> ComponentCosts:
    """Time onnxruntime encoding, the exact product, tantivy and fusion on ``queries``.

    ``models``: name -> (model directory, encode queries with its int8 variant).
    """
    index = open_index(index_dir)
    assert index.manifest.encoder is not None and index.vectors is not None
    max_length = index.manifest.encoder.max_length
    encode: dict[str, dict[int, float]] = {}
    arrival: dict[int, float] = {}
    vectors = None
    by_length: list[str] = []
    for name, (model, int8) in models.items():
        encoder = load_query_encoder(
            model, Device.CPU, max_length=max_length, intra_op_threads=1, spinning=False,
            int8_queries=int8,
        )  # fmt: skip
        # The batcher's grouping: neighbours in token length.
        by_length = by_length or sorted(queries, key=encoder.count_query_tokens)
        vectors = encoder.encode_queries(queries) if vectors is None else vectors
        encode[name] = {}
        for b in BATCHES:
            grouped = [by_length[i : i + b] for i in range(0, len(queries), b)]
            encode[name][b] = _cpu_ms_per_item(encoder.encode_queries, grouped) / b
            if name == "full":
                chunks = [queries[i : i + b] for i in range(0, len(queries), b)]
                arrival[b] = _cpu_ms_per_item(encoder.encode_queries, chunks) / b
    assert vectors is not None
    dense = ExactDenseIndex(index.vectors)
    product = {
        b: _cpu_ms_per_item(
            lambda rows: dense.search(rows, DEPTH),
            [vectors[i : i + b] for i in range(0, len(vectors), b)],
        ) / b
        for b in BATCHES
    }  # fmt: skip
    weights = [{t: float(n) for t, n in query_term_counts(q).items()} for q in queries]
    sparse = {k: _cpu_ms_per_item(functools.partial(_sparse_search, index, k), weights)
              for k in (10, 100, 1000)}  # fmt: skip
    lists = [(index.tantivy_reader.search(w, DEPTH), dense.search(v[None, :], DEPTH)[0])
             for w, v in zip(weights, vectors, strict=True)]  # fmt: skip
    settings = FusionSettings()
    doc_id = index.ids.__getitem__
    fusion = _cpu_ms_per_item(
        lambda pair: [doc_id(d.ordinal) for d in fuse_interpolate(
            pair[0], pair[1], alpha=settings.alpha, normalization=settings.normalization,
            doc_id=doc_id, limit=10)],
        lists,
    )  # fmt: skip
    return ComponentCosts(
        encode_cpu_ms=encode,
        encode_arrival_cpu_ms=arrival,
        product_cpu_ms=product,
        sparse_cpu_ms=sparse,
        fusion_cpu_ms=fusion,
        cores=os.cpu_count() or 1,
    )


def ndcg10(
    engine: HybridSearcher,
    queries: list[tuple[str, str]],
    qrels: dict[str, dict[str, int]],
    mode: str,
    depth: int = DEPTH,
) -> float:
    """nDCG@10 of the engine in ``mode`` with server defaults (``depth`` per arm)."""
    retrieval = RetrievalMode[mode.upper()]
    fusion = FusionSettings(sparse_depth=depth, dense_depth=depth)
    run = {}
    for qid, text in queries:
        result = engine.search(Query(text=text, top_k=10, mode=retrieval, fusion=fusion))
        run[qid] = {hit.id: hit.score for hit in result.hits}
    return evaluate(run, qrels)["nDCG@10"]
