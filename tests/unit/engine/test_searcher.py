"""HybridSearcher over a fake index (hash vectors through the `Encoder` Protocol): modes,
fusion, explanations, top_k, batches, progressive results, preconditions, stored documents."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.engine.batching import BatchingSettings
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import FailedPreconditionError
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import (
    Document,
    FusionMethod,
    FusionSettings,
    Hit,
    Query,
    RetrievalMode,
    SearchResult,
    StoredField,
)
from tests.fakes import HashEncoder, build_fake_index

SPARSE, DENSE, HYBRID = RetrievalMode.SPARSE, RetrievalMode.DENSE, RetrievalMode.HYBRID
DOCS = [
    Document("a", "", "laminar flow over a flat plate", {"year": 1958}),
    Document("b", "Shock", "shock wave and boundary layer"),
    Document("c", "", "heat transfer in hypersonic flow"),
    Document("d", "", "flutter of thin swept wings"),
    Document("e", "", "turbulent boundary layer on a flat plate"),
    Document("f", "", "buckling of cylindrical shells"),
]
ALL = len(DOCS)


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_index(tmp_path_factory.mktemp("searcher") / "index", DOCS)


@pytest.fixture(scope="module")
def searcher(index_path: Path) -> Iterator[HybridSearcher]:
    engine = HybridSearcher(open_index(index_path), HashEncoder())
    yield engine
    engine.close()


def ids(result: SearchResult) -> list[str]:
    return [hit.id for hit in result.hits]


def scored(result: SearchResult) -> list[tuple[str, float]]:
    return [(hit.id, hit.score) for hit in result.hits]


def by_id(result: SearchResult) -> dict[str, Hit]:
    return {hit.id: hit for hit in result.hits}


def test_sparse_finds_only_documents_with_the_terms(searcher: HybridSearcher) -> None:
    result = searcher.search(Query(text="flat plate", top_k=ALL, mode=SPARSE))
    assert sorted(ids(result)) == ["a", "e"]
    assert result.applied.mode is SPARSE
    assert result.timings.encode_us == result.timings.dense_us == 0


def test_dense_ranks_every_document_and_the_same_text_first(searcher: HybridSearcher) -> None:
    result = searcher.search(Query(text=DOCS[3].text, top_k=ALL, mode=DENSE))
    assert ids(result)[0] == "d"
    assert result.hits[0].score == pytest.approx(1.0)  # the same unit vector
    assert sorted(ids(result)) == sorted(d.id for d in DOCS)


def test_hybrid_combines_both_arms(searcher: HybridSearcher) -> None:
    text = DOCS[3].text  # dense: d first; sparse: only d has these terms
    hybrid = searcher.search(Query(text=text, top_k=ALL, mode=HYBRID))
    assert ids(hybrid)[0] == "d"
    assert sorted(ids(hybrid)) == sorted(d.id for d in DOCS)  # the dense arm reaches all
    assert hybrid.timings.sparse_us > 0 and hybrid.timings.encode_us > 0


@pytest.mark.parametrize("mode", list(RetrievalMode))
@pytest.mark.parametrize("top_k", [1, 3, ALL + 5])
def test_top_k_ranks_and_order(searcher: HybridSearcher, mode: RetrievalMode, top_k: int) -> None:
    result = searcher.search(Query(text="boundary layer flow", top_k=top_k, mode=mode))
    full = searcher.search(Query(text="boundary layer flow", top_k=ALL, mode=mode))
    assert len(result.hits) == min(top_k, len(full.hits))
    assert scored(result) == scored(full)[:top_k]  # a cut of the full ranking
    assert [hit.rank for hit in result.hits] == list(range(1, len(result.hits) + 1))
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_without_explain_no_explanation_and_no_fields(searcher: HybridSearcher) -> None:
    result = searcher.search(Query(text="flat plate", top_k=ALL))
    for hit in result.hits:
        assert hit.explanation is None
        assert hit.title is None and hit.text is None and hit.metadata is None


def test_return_fields_fetch_only_what_is_asked(searcher: HybridSearcher) -> None:
    fields = frozenset({StoredField.TEXT, StoredField.METADATA})
    result = searcher.search(Query(text="laminar", top_k=1, mode=SPARSE, return_fields=fields))
    (hit,) = result.hits
    assert (hit.id, hit.title, hit.text, hit.metadata) == ("a", None, DOCS[0].text, {"year": 1958})


def test_interpolation_explains_both_arms(searcher: HybridSearcher) -> None:
    text = "flat plate boundary layer"
    fusion = FusionSettings(method=FusionMethod.INTERPOLATION, alpha=0.3)
    hybrid = searcher.search(Query(text=text, top_k=ALL, fusion=fusion, explain=True))
    sparse = by_id(searcher.search(Query(text=text, top_k=ALL, mode=SPARSE)))
    dense = by_id(searcher.search(Query(text=text, top_k=ALL, mode=DENSE)))
    for hit in hybrid.hits:
        explanation = hit.explanation
        assert explanation is not None and explanation.fused_score == hit.score
        assert explanation.dense is not None  # the dense arm ranks every document
        assert explanation.dense.raw_score == pytest.approx(dense[hit.id].score)
        assert explanation.dense.rank == dense[hit.id].rank
        if hit.id not in sparse:
            assert explanation.sparse is None
            continue
        assert explanation.sparse is not None
        assert explanation.sparse.raw_score == pytest.approx(sparse[hit.id].score)
        assert explanation.sparse.rank == sparse[hit.id].rank
        expected = 0.3 * explanation.dense.normalized_score + 0.7 * (
            explanation.sparse.normalized_score
        )
        assert hit.score == pytest.approx(expected)


def test_rrf_scores_are_weighted_reciprocal_ranks(searcher: HybridSearcher) -> None:
    fusion = FusionSettings(method=FusionMethod.RRF, rrf_k=10, rrf_sparse_weight=2.0)
    result = searcher.search(
        Query(text="flat plate boundary layer", top_k=ALL, fusion=fusion, explain=True)
    )
    assert result.applied.fusion.method is FusionMethod.RRF
    for hit in result.hits:
        assert hit.explanation is not None
        sparse, dense = hit.explanation.sparse, hit.explanation.dense
        expected = (2.0 / (10 + sparse.rank) if sparse else 0.0) + (
            1.0 / (10 + dense.rank) if dense else 0.0
        )
        assert hit.score == pytest.approx(expected)


def test_rrf_and_interpolation_rank_differently_here(searcher: HybridSearcher) -> None:
    text = "flat plate boundary layer"
    rrf = searcher.search(Query(text=text, top_k=ALL, fusion=FusionSettings(FusionMethod.RRF)))
    interpolated = searcher.search(Query(text=text, top_k=ALL))
    assert scored(rrf) != scored(interpolated)


def test_search_batch_equals_searches_one_by_one(searcher: HybridSearcher) -> None:
    queries = [
        Query(text="flat plate", top_k=3, mode=SPARSE),
        Query(text="boundary layer", top_k=4, mode=DENSE),
        Query(text=DOCS[5].text, top_k=2, mode=HYBRID, explain=True),
        Query(text="flow", top_k=ALL, fusion=FusionSettings(FusionMethod.RRF)),
    ]
    batch = searcher.search_batch(queries)
    singles = [searcher.search(q) for q in queries]
    assert [r.applied for r in batch] == queries
    for together, alone in zip(batch, singles, strict=True):
        # one matrix product for the batch: the same ranking, scores up to float rounding
        assert ids(together) == ids(alone)
        assert [h.score for h in together.hits] == pytest.approx([h.score for h in alone.hits])
        assert [h.explanation is None for h in together.hits] == [
            h.explanation is None for h in alone.hits
        ]


def test_progressive_hands_over_bm25_first_then_returns_the_fused_result(
    searcher: HybridSearcher,
) -> None:
    query = Query(text="flat plate boundary layer", top_k=4)
    partials: list[SearchResult] = []
    final = searcher.search_progressive(query, partials.append)
    (partial,) = partials
    assert partial.applied == dataclasses.replace(query, mode=SPARSE)
    assert partial.hits == searcher.search(dataclasses.replace(query, mode=SPARSE)).hits
    assert final.applied.mode is HYBRID
    assert final.hits == searcher.search(query).hits
    assert final.timings.encode_us > 0


@pytest.mark.parametrize("mode", [SPARSE, DENSE])
def test_progressive_outside_hybrid_is_one_plain_result(
    searcher: HybridSearcher, mode: RetrievalMode
) -> None:
    query = Query(text="flat plate", top_k=3, mode=mode)
    partials: list[SearchResult] = []
    result = searcher.search_progressive(query, partials.append)
    assert partials == []
    assert result.hits == searcher.search(query).hits


def test_dense_modes_without_an_encoder_fail_precondition(index_path: Path) -> None:
    engine = HybridSearcher(open_index(index_path), None)
    try:
        assert engine.batch_stats() is None
        for mode in (DENSE, HYBRID):
            with pytest.raises(FailedPreconditionError, match="--model"):
                engine.search(Query(text="flow", mode=mode))
            with pytest.raises(FailedPreconditionError, match="--model"):
                engine.search_progressive(Query(text="flow", mode=mode), lambda _: None)
        assert ids(engine.search(Query(text="laminar", mode=SPARSE))) == ["a"]
    finally:
        engine.close()


def test_dense_modes_on_an_index_without_vectors_fail_precondition(tmp_path: Path) -> None:
    path = build_fake_index(tmp_path / "bm25", DOCS, dense=False)
    engine = HybridSearcher(open_index(path), HashEncoder())
    try:
        with pytest.raises(FailedPreconditionError, match="--no-dense"):
            engine.search_batch([Query(text="flow", mode=SPARSE), Query(text="flow", mode=DENSE)])
        assert ids(engine.search(Query(text="laminar", mode=SPARSE))) == ["a"]
    finally:
        engine.close()


def test_document_returns_stored_fields_or_none(searcher: HybridSearcher) -> None:
    stored = searcher.document("b")
    assert stored is not None
    assert (stored.id, stored.title, stored.text) == ("b", "Shock", DOCS[1].text)
    with_metadata = searcher.document("a")
    assert with_metadata is not None and with_metadata.metadata == {"year": 1958}
    assert searcher.document("missing") is None


def test_a_tie_at_the_hybrid_sparse_cut_is_taken_by_id_not_by_storage_order(
    tmp_path: Path,
) -> None:
    """ "b-tie" is stored first; both score the same for the query. The sparse arm alone ranks
    "a-tie" first (ties by id), so with one sparse candidate it is "a-tie" that enters fusion
    (tantivy's document order would have taken "b-tie")."""
    text = "quokka habitat survey"
    path = build_fake_index(tmp_path / "idx", [Document("z", "", "other")])
    writer = IndexWriter(path)
    for doc_id in ("b-tie", "a-tie"):  # one commit each: "b-tie" first in tantivy's order
        doc = Document(doc_id, "", text)
        writer.upsert([doc], HashEncoder().encode_documents([doc.text]))
    writer.close()
    engine = HybridSearcher(open_index(path), HashEncoder())
    try:
        alone = engine.search(Query(text="quokka", top_k=2, mode=SPARSE))
        assert ids(alone) == ["a-tie", "b-tie"]
        fusion = FusionSettings(sparse_depth=1, dense_depth=1)  # (depths are at least top_k)
        result = engine.search(
            Query(text="quokka", top_k=1, mode=HYBRID, fusion=fusion, explain=True)
        )
        [hit] = result.hits  # the sparse candidate and the dense one fuse to 0.5 each
        assert hit.id == "a-tie"
        assert hit.explanation is not None and hit.explanation.sparse is not None
        assert hit.explanation.sparse.rank == 1
    finally:
        engine.close()


TIED_TEXT = "quokka habitat survey"
#: "b-tie" before "a-tie": storage order (the dense index's ordinals) and id order disagree.
#: Their texts, so their vectors, are the same: any query scores them exactly alike.
TIE_DOCS = [
    Document("z", "", "other"),
    Document("b-tie", "", TIED_TEXT),
    Document("a-tie", "", TIED_TEXT),
]


def test_a_tie_at_the_hybrid_dense_cut_is_taken_by_id_not_by_storage_order(
    tmp_path: Path,
) -> None:
    """For "other", the dense arm ranks "z" first (its own text), then the two tied
    documents; a dense depth of 2 cuts between them. It is "a-tie" (the first by id, as the
    dense arm alone ranks them) that enters fusion, at dense rank 2, in a search, a batch and
    a progressive search alike; the index's ordinal order would have taken "b-tie"."""
    engine = HybridSearcher(open_index(build_fake_index(tmp_path / "idx", TIE_DOCS)), HashEncoder())
    try:
        alone = engine.search(Query(text="other", top_k=3, mode=DENSE))
        assert ids(alone) == ["z", "a-tie", "b-tie"]
        assert alone.hits[1].score == alone.hits[2].score
        fusion = FusionSettings(sparse_depth=2, dense_depth=2)
        query = Query(text="other", top_k=2, mode=HYBRID, fusion=fusion, explain=True)
        results = [
            engine.search(query),
            *engine.search_batch([query, query]),
            engine.search_progressive(query, lambda _: None),
        ]
        for result in results:
            assert ids(result) == ["z", "a-tie"]
            explanation = result.hits[1].explanation
            assert explanation is not None and explanation.dense is not None
            assert explanation.dense.rank == 2
    finally:
        engine.close()


class RunRecordingEncoder(HashEncoder):
    """`HashEncoder` that keeps the texts of each encoder run."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[list[str]] = []

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.runs.append(list(texts))
        return super().encode_queries(texts)


def test_a_split_batch_reports_each_query_s_own_run_not_the_parts_summed(
    index_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Five queries in batches of two run as three encoder runs (and dense searches); each
    query reports the times its own run logged, not the three runs' times added up."""
    encoder = RunRecordingEncoder()
    engine = HybridSearcher(open_index(index_path), encoder, batching=BatchingSettings(2))
    texts = [doc.text for doc in DOCS[:5]]
    try:
        with caplog.at_level(logging.DEBUG, logger="hybridsearch.engine.dense_arm"):
            results = engine.search_batch([Query(text=t, top_k=2) for t in texts])
    finally:
        engine.close()
    assert encoder.runs == [texts[0:2], texts[2:4], texts[4:5]]

    def logged(prefix: str) -> list[int]:  # "<prefix>: N texts in US us"
        messages = [r.getMessage() for r in caplog.records]
        return [int(m.split()[-2]) for m in messages if m.startswith(prefix)]

    encode_runs, dense_runs = logged("encoder run"), logged("dense search")
    assert len(encode_runs) == len(dense_runs) == 3
    assert all(us > 0 for us in encode_runs)  # so no run's time is the three added up
    run_of = [0, 0, 1, 1, 2]
    assert [r.timings.encode_us for r in results] == [encode_runs[k] for k in run_of]
    assert [r.timings.dense_us for r in results] == [dense_runs[k] for k in run_of]
