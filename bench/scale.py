"""Synthetic corpora (10k / 100k / 1M documents): latency of each arm vs corpus size, exact vs
HNSW (recall@10), build time, bytes on disk, server RSS.

Text: words drawn with their frequencies from the shared collections' vocabulary, lengths
like SciFact's. Vectors: random unit vectors (seeded), recorded as the default model's so a
real server (real query encoder) can serve the index. Random vectors are the hard case for
HNSW: no clusters, near-equidistant neighbours.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from common import percentiles_ms
from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.dense.hnsw import HNSW_FILE, HnswDenseIndex, HnswParams, build_hnsw
from hybridsearch.engine import HybridSearcher
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import EncoderInfo, load_manifest
from hybridsearch.types import Document, FusionSettings, Query, RetrievalMode

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


class RandomVectors:
    """An `Encoder` stand-in: random unit vectors, recorded as the real model's."""

    def __init__(self, info: EncoderInfo, seed: int) -> None:
        self.model_id = info.model_id
        self.dimension = info.dimension
        self.provider = "none"
        self._rng = np.random.default_rng(seed)

    def _unit(self, n: int) -> NDArray[np.float32]:
        v = self._rng.standard_normal((n, self.dimension), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return self._unit(len(texts))

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._unit(len(texts))


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
    server_rss_bytes: int = 0
    grpc_hybrid_c1_p50_ms: float = 0.0


def build_synthetic(
    out: Path, n: int, words: list[str], p: NDArray[np.float64], info: EncoderInfo
) -> tuple[float, float]:
    """Build the index (exact) then its HNSW graph; returns both build times."""
    started = time.perf_counter()
    build_index(
        synthetic_docs(n, words, p, seed=n),
        out,
        encoder=RandomVectors(info, seed=n),
        encoder_info=info,
        force=True,
        batch_size=4096,
    )
    build_s = time.perf_counter() - started
    index = open_index(out)
    assert index.vectors is not None
    started = time.perf_counter()
    build_hnsw(np.asarray(index.vectors), out / HNSW_FILE, HnswParams())
    hnsw_s = time.perf_counter() - started
    manifest = load_manifest(out)
    dataclasses.replace(manifest, dense_index="hnsw").save(out)
    return build_s, hnsw_s


def _latencies(fn, items: list) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for item in items[:3]:
        fn(item)
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t0)
    return percentiles_ms(times)


def measure_inprocess(
    index_dir: Path, info: EncoderInfo, queries: list[str], point: ScalePoint
) -> None:
    """Per-arm p50/p99 with random query vectors (no encoding cost), exact vs HNSW, recall."""
    index = open_index(index_dir)
    assert index.vectors is not None
    encoder = RandomVectors(info, seed=7)
    qvecs = encoder.encode_queries(queries)
    exact = ExactDenseIndex(index.vectors)
    hnsw = HnswDenseIndex(index_dir / HNSW_FILE, index.vectors)
    truth = [[d.ordinal for d in hits] for hits in exact.search(qvecs, 10)]
    for ef in (64, 128, 256, 512):
        graph = HnswDenseIndex(index_dir / HNSW_FILE, index.vectors, ef_search=ef)
        found = [[d.ordinal for d in hits] for hits in graph.search(qvecs, 10)]
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
        point.recall_at_10[ef] = hits / (10 * len(queries))
        point.hnsw_p50_ms[ef] = _latencies(lambda v, g=graph: g.search(v[None, :], 10), list(qvecs))[
            "p50"
        ]
    point.latency_ms["dense exact top10"] = _latencies(lambda v: exact.search(v[None, :], 10), list(qvecs))
    point.latency_ms["dense hnsw top10"] = _latencies(lambda v: hnsw.search(v[None, :], 10), list(qvecs))
    fusion = FusionSettings(sparse_depth=1000, dense_depth=100)
    for name, factory in (("exact", lambda i: exact), ("hnsw", lambda i: hnsw)):
        engine = HybridSearcher(index, encoder, dense_factory=factory)
        try:
            if name == "exact":
                point.latency_ms["sparse top10"] = _latencies(
                    lambda q: engine.search(Query(text=q, top_k=10, mode=RetrievalMode.SPARSE)),
                    queries,
                )
            point.latency_ms[f"hybrid {name} (depth 1000/100)"] = _latencies(
                lambda q: engine.search(Query(text=q, top_k=10, fusion=fusion)), queries
            )
        finally:
            engine.close()


def part_sizes(index_dir: Path) -> tuple[int, int, int, int]:
    """Bytes: total, tantivy, vectors.npy, HNSW graph."""
    sparse = dir_size_bytes(index_dir / "sparse")
    vectors = (index_dir / "vectors.npy").stat().st_size
    graph = (index_dir / HNSW_FILE).stat().st_size if (index_dir / HNSW_FILE).exists() else 0
    return dir_size_bytes(index_dir), sparse, vectors, graph
