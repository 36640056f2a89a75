"""Synthetic corpora (10k / 100k / 1M documents): latency of each arm vs corpus size, exact vs
HNSW (recall@10), build time, bytes on disk, server RSS.

Text: words drawn with their frequencies from the shared collections' vocabulary, lengths
like SciFact's. Vectors (encoding a million documents would take about a day here): random
unit vectors around real ones. Each is a real MiniLM document vector of SciFact (an
"anchor", drawn at random) plus isotropic Gaussian noise, renormalised; the noise is scaled
so a synthetic vector sits from its anchor where a real SciFact document sits from its
nearest neighbour (median cosine), so the corpus keeps the clusters and the anisotropy of
real embeddings. Uniform random vectors would not: in 384 dimensions they are all nearly
equidistant, which no embedding corpus is and no ANN index can search well. Queries are the
real SciFact test queries, encoded by the real model (in-process and by the server).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.dense.hnsw import HNSW_FILE, HnswDenseIndex, HnswParams, build_hnsw
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.harness import percentiles_ms
from hybridsearch.sparse.analysis import query_term_counts
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.storage.manifest import EncoderInfo, load_manifest
from hybridsearch.types import Document, FusionSettings, Query

DIM = 384
WORD = re.compile(r"[a-z]{2,20}")


def vocabulary(shared_data: Path, max_words: int = 50_000) -> tuple[list[str], NDArray[np.float64]]:
    """The most frequent words of every shared collection and their probabilities."""
    counts: Counter[str] = Counter()
    for corpus in sorted(shared_data.glob("*/corpus.jsonl")):
        with corpus.open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                counts.update(WORD.findall(f"{row.get('title', '')} {row.get('text', '')}".lower()))
    words, freqs = zip(*counts.most_common(max_words), strict=True)
    p = np.array(freqs, dtype=np.float64)
    return list(words), p / p.sum()


def synthetic_docs(
    n: int, words: list[str], p: NDArray[np.float64], seed: int
) -> Iterator[Document]:
    """``n`` documents of ~200 words (SciFact's mean length), drawn by word frequency."""
    rng = np.random.default_rng(seed)
    vocab = np.array(words, dtype=object)
    chunk = 10_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        lengths = np.clip(rng.normal(200, 80, size).astype(int), 20, 600)
        drawn = vocab[rng.choice(len(words), int(lengths.sum()), p=p)]
        at = 0
        for i, length in enumerate(lengths):
            text = " ".join(drawn[at : at + length])
            at += length
            yield Document(f"s{start + i}", "", text)


class AnchoredVectors:
    """An `Encoder` stand-in for documents: anchor + noise, recorded as the real model's."""

    def __init__(self, info: EncoderInfo, anchors: NDArray[np.float32], seed: int) -> None:
        self.model_id = info.model_id
        self.dimension = info.dimension
        self.provider = "none"
        self._anchors = anchors
        self._rng = np.random.default_rng(seed)
        self.noise = anchor_noise(anchors)

    def _vectors(self, n: int) -> NDArray[np.float32]:
        picked = self._anchors[self._rng.integers(0, len(self._anchors), n)]
        noise = self._rng.standard_normal((n, self.dimension), dtype=np.float32)
        v = picked + noise * np.float32(self.noise / np.sqrt(self.dimension))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return self._vectors(len(texts))

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        raise NotImplementedError("queries are encoded by the real model")


def anchor_noise(anchors: NDArray[np.float32]) -> float:
    """Noise norm σ putting anchor + noise at the median nearest-neighbour cosine c of the
    anchors from its anchor: cos = 1 / sqrt(1 + σ²), so σ = sqrt(1/c² − 1)."""
    sample = anchors[: min(len(anchors), 5000)]
    sims = sample @ anchors.T
    sims[np.arange(len(sample)), np.arange(len(sample))] = -1.0
    c = float(np.median(sims.max(axis=1)))
    return float(np.sqrt(1.0 / c**2 - 1.0))


EF_SEARCH = (32, 64, 128, 256)
HNSW = HnswParams(m=32, ef_construction=100)  # efConstruction 100: half the default's build
DEPTH = 100  # candidates per arm in the hybrid runs at scale (server default 1000; see report)


@dataclass
class ScalePoint:
    """Measurements on one synthetic corpus size."""

    documents: int
    build_s: float  # BM25 + vectors
    hnsw_build_s: float
    bytes_total: int
    bytes_sparse: int
    bytes_vectors: int
    bytes_hnsw: int
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    recall_at_10: dict[int, float] = field(default_factory=dict)  # ef_search -> recall
    hnsw_p50_ms: dict[int, float] = field(default_factory=dict)  # ef_search -> dense p50
    serve_ef_search: int = 0  # the smallest efSearch with recall@10 >= 0.95 (else the largest)
    server_rss_bytes: int = 0
    grpc: dict[str, dict[str, float]] = field(default_factory=dict)  # "hybrid c8" -> figures


def build_synthetic(
    out: Path,
    n: int,
    words: list[str],
    p: NDArray[np.float64],
    *,
    info: EncoderInfo,
    anchors: NDArray[np.float32],
) -> tuple[float, float]:
    """Build the index (exact) then its HNSW graph; returns both build times."""
    started = time.perf_counter()
    build_index(
        synthetic_docs(n, words, p, seed=n),
        out,
        encoder=AnchoredVectors(info, anchors, seed=n),
        encoder_info=info,
        force=True,
        batch_size=8192,
    )
    build_s = time.perf_counter() - started
    index = open_index(out)
    assert index.vectors is not None
    started = time.perf_counter()
    build_hnsw(np.asarray(index.vectors), out / HNSW_FILE, HNSW)
    hnsw_s = time.perf_counter() - started
    manifest = load_manifest(out)
    dataclasses.replace(manifest, dense_index="hnsw").save(out)
    return build_s, hnsw_s


def _latencies(fn: Callable[[Any], object], items: Sequence[Any]) -> dict[str, float]:
    """p50/p95/p99 ms of ``fn(item)`` over ``items``, after three warm-up calls."""
    for item in items[:3]:
        fn(item)
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t0)
    return percentiles_ms(times)


def measure_inprocess(
    index_dir: Path,
    encoder: Encoder,
    queries: list[str],
    query_vectors: NDArray[np.float32],
    point: ScalePoint,
) -> None:
    """Per-arm p50/p99 of real queries (dense arms on their precomputed vectors), exact vs
    HNSW, recall@10 by efSearch; hybrid through the engine (encoder included)."""
    index = open_index(index_dir)
    assert index.vectors is not None
    vectors = list(query_vectors)
    exact = ExactDenseIndex(index.vectors)
    truth = [[d.ordinal for d in hits] for hits in exact.search(query_vectors, 10)]
    for ef in EF_SEARCH:
        graph = HnswDenseIndex(index_dir / HNSW_FILE, index.vectors, ef_search=ef)
        found = [[d.ordinal for d in hits] for hits in graph.search(query_vectors, 10)]
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
        point.recall_at_10[ef] = hits / (10 * len(queries))
        point.hnsw_p50_ms[ef] = _latencies(_top10_of(graph), vectors)["p50"]
    good = [ef for ef in EF_SEARCH if point.recall_at_10[ef] >= 0.95]
    point.serve_ef_search = good[0] if good else EF_SEARCH[-1]
    hnsw = HnswDenseIndex(index_dir / HNSW_FILE, index.vectors, ef_search=point.serve_ef_search)
    point.latency_ms["dense exact top10"] = _latencies(_top10_of(exact), vectors[:50])
    point.latency_ms["dense hnsw top10"] = _latencies(_top10_of(hnsw), vectors)
    weights = [{t: float(c) for t, c in query_term_counts(q).items()} for q in queries]
    for depth in (10, DEPTH, 1000):
        point.latency_ms[f"sparse top{depth}"] = _latencies(
            functools.partial(_sparse_top, index, depth), weights
        )
    fusion = FusionSettings(sparse_depth=DEPTH, dense_depth=DEPTH)
    for name, dense in (("exact", exact), ("hnsw", hnsw)):
        engine = HybridSearcher(index, encoder, dense_factory=functools.partial(_same, dense))
        try:
            point.latency_ms[f"hybrid {name} (depth {DEPTH}, encoder included)"] = _latencies(
                functools.partial(_hybrid_search, engine, fusion),
                queries[:50] if name == "exact" else queries,
            )
        finally:
            engine.close()


def _top10_of(
    dense: ExactDenseIndex | HnswDenseIndex,
) -> Callable[[NDArray[np.float32]], object]:
    """One query vector → ``dense``'s top 10."""
    return lambda vector: dense.search(vector[None, :], 10)


def _sparse_top(index: OpenIndex, depth: int, weights: dict[str, float]) -> object:
    return index.search_sparse(weights, depth)


def _hybrid_search(engine: HybridSearcher, fusion: FusionSettings, text: str) -> object:
    return engine.search(Query(text=text, top_k=10, fusion=fusion))


def _same(dense: ExactDenseIndex | HnswDenseIndex, _: object) -> ExactDenseIndex | HnswDenseIndex:
    return dense


def part_sizes(index_dir: Path) -> tuple[int, int, int, int]:
    """Bytes: total, tantivy, vectors.npy, HNSW graph."""
    sparse = dir_size_bytes(index_dir / "sparse")
    vectors = (index_dir / "vectors.npy").stat().st_size
    graph = (index_dir / HNSW_FILE).stat().st_size if (index_dir / HNSW_FILE).exists() else 0
    return dir_size_bytes(index_dir), sparse, vectors, graph
