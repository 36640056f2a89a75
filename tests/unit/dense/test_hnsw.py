"""HnswDenseIndex (faiss): recall against the exact reference, live mask, appended rows,
and an index built with --dense-index hnsw served through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybridsearch.dense.reference import ReferenceDenseIndex
from hybridsearch.dense.select import DenseIndexKind, parse_dense_index
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import IndexFormatError
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import EncoderInfo, load_manifest
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document, Query, RetrievalMode
from tests.fakes import HASH_ENCODER_INFO, HashEncoder

pytest.importorskip("faiss", reason="the `ann` extra (faiss-cpu) is not installed")

from hybridsearch.dense.hnsw import HNSW_FILE, HnswDenseIndex, HnswParams, build_hnsw

DIM = 32


def clustered(rows: int, seed: int) -> np.ndarray:
    """Unit vectors around a few centres (like text embeddings, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, DIM))
    points = centres[rng.integers(0, 16, rows)] + 0.3 * rng.standard_normal((rows, DIM))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def ordinals(lists: list) -> list[list[int]]:
    return [[d.ordinal for d in hits] for hits in lists]


@pytest.fixture
def graph(tmp_path: Path) -> tuple[np.ndarray, Path]:
    matrix = clustered(2000, seed=1)
    return matrix, build_hnsw(matrix, tmp_path / HNSW_FILE, HnswParams(m=16))


def test_recall_against_exact(graph: tuple[np.ndarray, Path]) -> None:
    matrix, path = graph
    queries = clustered(50, seed=2)
    approx = HnswDenseIndex(path, matrix, ef_search=128).search(queries, 10)
    exact = ReferenceDenseIndex(matrix).search(queries, 10)
    found = sum(
        len(set(a) & set(e)) for a, e in zip(ordinals(approx), ordinals(exact), strict=True)
    )
    assert found / (50 * 10) >= 0.95
    for hits in approx:
        assert [d.score for d in hits] == sorted((d.score for d in hits), reverse=True)


def test_scores_are_inner_products(graph: tuple[np.ndarray, Path]) -> None:
    matrix, path = graph
    query = clustered(1, seed=3)
    (hits,) = HnswDenseIndex(path, matrix).search(query, 5)
    for d in hits:
        assert d.score == pytest.approx(float(matrix[d.ordinal] @ query[0]), abs=1e-5)


def test_live_mask_excludes_rows(graph: tuple[np.ndarray, Path]) -> None:
    matrix, path = graph
    queries = matrix[:5]  # each query's best row is itself
    live = np.ones(len(matrix), dtype=bool)
    live[:5] = False
    index = HnswDenseIndex(path, matrix)
    assert [hits[0].ordinal for hits in index.search(queries, 3)] == [0, 1, 2, 3, 4]
    for i, hits in enumerate(index.search(queries, 3, live)):
        assert all(d.ordinal >= 5 for d in hits) and len(hits) == 3, i


def test_rows_appended_after_the_graph_are_searched_exactly(
    graph: tuple[np.ndarray, Path],
) -> None:
    matrix, path = graph
    extra = clustered(3, seed=9)
    grown = np.vstack([matrix, extra])
    hits = HnswDenseIndex(path, grown).search(extra, 1)
    assert [h[0].ordinal for h in hits] == [2000, 2001, 2002]


def test_k_edge_cases(graph: tuple[np.ndarray, Path]) -> None:
    matrix, path = graph
    index = HnswDenseIndex(path, matrix)
    assert index.search(matrix[:2], 0) == [[], []]
    with pytest.raises(ValueError):
        index.search(matrix[:1], -1)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, DIM + 1), dtype=np.float32), 1)


def test_missing_or_mismatched_graph(tmp_path: Path, graph: tuple[np.ndarray, Path]) -> None:
    matrix, path = graph
    with pytest.raises(IndexFormatError):
        HnswDenseIndex(tmp_path / "absent.faiss", matrix)
    with pytest.raises(IndexFormatError):
        HnswDenseIndex(path, matrix[:10])  # fewer rows than the graph covers
    with pytest.raises(IndexFormatError):
        parse_dense_index("ivf")


class TableEncoder:
    """Encodes each known text to a fixed vector (documents and queries alike)."""

    model_id = "table"
    dimension = DIM
    provider = "CPUExecutionProvider"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.array([self.table[t] for t in texts], dtype=np.float32)

    def encode_documents(self, texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
        return self.encode_queries(texts)


def test_build_with_hnsw_records_it_and_the_engine_serves_it(tmp_path: Path) -> None:
    vectors = clustered(300, seed=5)
    docs = [Document(f"d{i}", f"title {i}", f"text number {i}") for i in range(300)]
    encoder = TableEncoder({f"title {i} text number {i}": vectors[i] for i in range(300)})
    info = EncoderInfo("table", DIM, "mean", True, 128)
    out = tmp_path / "idx"
    build_index(docs, out, encoder=encoder, encoder_info=info, dense_index=DenseIndexKind.HNSW)
    assert load_manifest(out).dense_index == "hnsw"
    assert (out / HNSW_FILE).is_file()
    encoder.table["q"] = vectors[42]
    engine = HybridSearcher(open_index(out), encoder)
    try:
        result = engine.search(Query(text="q", top_k=3, mode=RetrievalMode.DENSE))
    finally:
        engine.close()
    assert result.hits[0].id == "d42"


def test_exact_stays_the_default(tmp_path: Path) -> None:
    build_index([Document("a", "", "x")], tmp_path / "idx", encoder=None)
    assert load_manifest(tmp_path / "idx").dense_index == "exact"
    assert not (tmp_path / "idx" / HNSW_FILE).exists()


def test_an_index_built_with_an_m_above_the_flags_bound_still_compacts(tmp_path: Path) -> None:
    """`--hnsw-m` is bounded (512) since an index could be built with more: compaction keeps
    the M it records (a bound there refused to compact such an index, INTERNAL on Compact)."""
    path = tmp_path / "idx"
    docs = [Document(f"d{i}", "", f"word{i}") for i in range(3)]
    build_index(docs, path, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO,
                dense_index=DenseIndexKind.HNSW, hnsw=HnswParams(m=600))  # fmt: skip
    writer = IndexWriter(path)
    try:
        writer.delete(["d0"])
        assert writer.compact().rewritten
    finally:
        writer.close()
    assert load_manifest(path).hnsw_m == 600
    assert open_index(path).ids.count("d0") == 0
