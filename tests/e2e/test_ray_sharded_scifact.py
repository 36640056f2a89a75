"""The Ray acceptance check on SciFact: the session's SciFact index split into 3 shards
(`hybridsearch shards split`: the same documents and stored vectors, nothing re-encoded) and
served through the real load path (`serve --index SHARDED --ray local`: `load_sharded` on
a local Ray of its own, shard replicas as Ray actors, the real ONNX query encoder at the
front) answers every SciFact test query's dense top-1000 as the single index does (exact
search: the same documents and scores; neighbours whose scores differ by float32 rounding
only may swap), and its hybrid nDCG@10 is within 0.005 of the single index's (.735) with
the default settings (`--bm25-statistics collection`: the collection's BM25 statistics,
cached at the front). With each shard's own (`--bm25-statistics shard`, as Elasticsearch's
query-then-fetch) it is printed beside, and held within 0.01.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from hybridsearch.config import ServerSettings  # noqa: E402
from hybridsearch.encoders.onnx_encoder import OnnxEncoder  # noqa: E402
from hybridsearch.engine.loader import LoadedIndex  # noqa: E402
from hybridsearch.engine.searcher import HybridSearcher  # noqa: E402
from hybridsearch.engine.serving import CollectionSearcher  # noqa: E402
from hybridsearch.eval.collection import Collection, load_beir  # noqa: E402
from hybridsearch.eval.metrics import evaluate  # noqa: E402
from hybridsearch.sharding.searcher import ShardedSearcher  # noqa: E402
from hybridsearch.sharding.serving import load_sharded  # noqa: E402
from hybridsearch.sharding.split import split_index  # noqa: E402
from hybridsearch.storage.index_dir import open_index  # noqa: E402
from hybridsearch.types import Query, RetrievalMode, SearchResult  # noqa: E402

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
DEPTH = 1000
SHARDS = 3
BATCH = 100
ROUNDING = 1e-6  # float32 scores of unit vectors: a product's rounding is ~1e-7


def run_all(
    engine: CollectionSearcher, texts: Sequence[str], mode: RetrievalMode
) -> list[SearchResult]:
    """Every query at the server's default fusion, to depth 1,000, in batches."""
    template = Query(text="", top_k=DEPTH, mode=mode, fusion=ServerSettings().fusion_defaults)
    results: list[SearchResult] = []
    for start in range(0, len(texts), BATCH):
        batch = [replace(template, text=t) for t in texts[start : start + BATCH]]
        results.extend(engine.search_batch(batch))
    return results


def same_up_to_rounding(one: SearchResult, many: SearchResult) -> int:
    """Assert that two dense rankings hold the same documents with the same scores (to
    ``ROUNDING``), apart only where scores tie to within it; returns the hits ranked apart."""
    a = {h.id: h.score for h in one.hits}
    b = {h.id: h.score for h in many.hits}
    np.testing.assert_allclose(list(b.values()), list(a.values()), rtol=0, atol=ROUNDING)
    cut = min(*a.values(), *b.values())
    for doc_id in a.keys() ^ b.keys():  # in one top-1000 only: tied at the cut
        assert abs(a.get(doc_id, b.get(doc_id, 0.0)) - cut) <= ROUNDING, doc_id
    for doc_id in a.keys() & b.keys():
        assert abs(a[doc_id] - b[doc_id]) <= ROUNDING, doc_id
    return sum(x.id != y.id for x, y in zip(one.hits, many.hits, strict=True))


def ndcg10(results: Sequence[SearchResult], collection: Collection) -> float:
    run = {
        qid: {hit.id: hit.score for hit in result.hits}
        for qid, result in zip(collection.judged_queries, results, strict=True)
    }
    return float(evaluate(run, collection.qrels)["nDCG@10"])


@pytest.fixture(scope="module")
def collection(shared_data: Path) -> Collection:
    return load_beir(shared_data / "scifact")


@pytest.fixture(scope="module")
def single(
    scifact_index: Path, query_encoder: OnnxEncoder, collection: Collection
) -> dict[RetrievalMode, list[SearchResult]]:
    engine = HybridSearcher(open_index(scifact_index), query_encoder)
    try:
        texts = list(collection.judged_queries.values())
        return {mode: run_all(engine, texts, mode) for mode in RetrievalMode}
    finally:
        engine.close()


@pytest.fixture(scope="module")
def on_ray(
    scifact_index: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadedIndex]:
    if ray.is_initialized():
        pytest.skip("Ray is already connected in this process; this test starts its own")
    sharded = tmp_path_factory.mktemp("scifact-sharded") / "scifact-3"
    split_index(scifact_index, sharded, SHARDS)
    settings = ServerSettings(
        index=sharded, model=model_dir, ray="local", read_only=True
    )  # the default BM25 statistics: the collection's
    loaded = load_sharded(settings)  # starts a local Ray: the server's own
    assert ray.is_initialized()
    yield loaded
    loaded.searcher.close()
    assert not ray.is_initialized()  # the server started Ray, so closing it stopped Ray


def test_three_shards_on_ray_match_the_single_index(
    single: dict[RetrievalMode, list[SearchResult]],
    on_ray: LoadedIndex,
    collection: Collection,
    query_encoder: OnnxEncoder,
) -> None:
    texts = list(collection.judged_queries.values())
    served = on_ray.searcher
    assert isinstance(served, ShardedSearcher)
    sharded = {mode: run_all(served, texts, mode) for mode in RetrievalMode}
    assert ServerSettings().bm25_statistics == "collection"  # what `served` ran with
    # The same shards and Ray actors with each shard's own BM25 statistics.
    local = ShardedSearcher(served.group, served.manifest, query_encoder, bm25_statistics="shard")
    local_figures = {
        mode: ndcg10(run_all(local, texts, mode), collection)
        for mode in (RetrievalMode.SPARSE, RetrievalMode.HYBRID)
    }

    # Dense: the same documents with the same scores, in the same order but for neighbours
    # whose float32 scores differ by rounding only (a matrix product's rounding depends on its
    # shape: one index answering a query alone or in a batch differs as much).
    swapped = 0
    for one, many in zip(single[RetrievalMode.DENSE], sharded[RetrievalMode.DENSE], strict=True):
        assert len(many.hits) == DEPTH and not many.missing_shards
        swapped += same_up_to_rounding(one, many)

    figures = {
        mode: (ndcg10(single[mode], collection), ndcg10(sharded[mode], collection))
        for mode in RetrievalMode
    }
    pairs = zip(single[RetrievalMode.SPARSE], sharded[RetrievalMode.SPARSE], strict=True)
    sparse_same_top10 = np.mean(
        [[h.id for h in a.hits[:10]] == [h.id for h in b.hits[:10]] for a, b in pairs]
    )
    print(
        f"\nSciFact nDCG@10: 1 index | {SHARDS} shards on Ray, BM25 statistics of the "
        "collection | of each shard"
    )
    for mode, (one, many) in figures.items():
        shard_stats = local_figures.get(mode, many)
        print(
            f"  {mode.value:7} {one:.4f} | {many:.4f} ({many - one:+.4f}) | "
            f"{shard_stats:.4f} ({shard_stats - one:+.4f})"
        )
    print(f"  BM25 top-10 identical (collection statistics): {sparse_same_top10:.1%} of queries")
    print(f"  dense top-{DEPTH}: {swapped} hits of {len(texts) * DEPTH} ranked apart by rounding")

    hybrid_single, hybrid_sharded = figures[RetrievalMode.HYBRID]
    assert abs(hybrid_single - 0.735) <= 0.005
    assert abs(hybrid_sharded - hybrid_single) <= 0.005
    assert abs(local_figures[RetrievalMode.HYBRID] - hybrid_single) <= 0.01
    assert abs(figures[RetrievalMode.DENSE][0] - figures[RetrievalMode.DENSE][1]) <= 1e-3
