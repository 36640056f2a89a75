"""Domain results, hits, documents and index stats mapped onto their proto messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hybridsearch.api.convert import (
    document_from_proto,
    document_to_proto,
    hit_to_proto,
    result_to_proto,
    stats_to_proto,
)
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.storage.manifest import EncoderInfo, Manifest
from hybridsearch.types import (
    ArmScore,
    FusionMethod,
    FusionSettings,
    Hit,
    HitExplanation,
    Normalization,
    PrfSettings,
    PrfStage,
    Query,
    RetrievalMode,
    SearchResult,
    StageTimings,
    VectorPrfMethod,
)
from hybridsearch.v1 import index_pb2
from hybridsearch.v1 import search_pb2 as pb

SPARSE_ARM = ArmScore(raw_score=7.5, rank=2, normalized_score=0.75)
DENSE_ARM = ArmScore(raw_score=0.62, rank=1, normalized_score=1.0)


def test_a_bare_hit_sets_only_id_score_and_rank() -> None:
    message = pb.Hit()
    hit_to_proto(Hit(id="d1", score=0.5, rank=3), message)
    assert (message.id, message.score, message.rank) == ("d1", 0.5, 3)
    assert not message.HasField("metadata")
    assert not message.HasField("explanation")
    assert message.title == message.text == ""


def test_hit_fields_metadata_and_explanation() -> None:
    hit = Hit(
        id="d2",
        score=0.875,
        rank=1,
        title="Flow",
        text="laminar flow",
        metadata={"year": 1962, "tags": ["aero"], "nested": {"ok": True}},
        explanation=HitExplanation(sparse=SPARSE_ARM, dense=DENSE_ARM, fused_score=0.875),
    )
    message = pb.Hit()
    hit_to_proto(hit, message)
    assert (message.title, message.text) == ("Flow", "laminar flow")
    assert dict(message.metadata) == {"year": 1962, "tags": ["aero"], "nested": {"ok": True}}
    explanation = message.explanation
    assert explanation.fused_score == 0.875
    assert (explanation.sparse.raw_score, explanation.sparse.rank) == (7.5, 2)
    assert explanation.sparse.normalized_score == 0.75
    assert (explanation.dense.raw_score, explanation.dense.rank) == (pytest.approx(0.62), 1)
    assert explanation.dense.normalized_score == 1.0


def test_an_explanation_with_one_arm_leaves_the_other_unset() -> None:
    message = pb.Hit()
    explanation = HitExplanation(sparse=SPARSE_ARM, dense=None, fused_score=7.5)
    hit_to_proto(Hit(id="d", score=7.5, rank=1, explanation=explanation), message)
    assert message.explanation.HasField("sparse")
    assert not message.explanation.HasField("dense")


def _result(applied: Query, **kwargs: object) -> SearchResult:
    timings = StageTimings(
        total_us=100, encode_us=40, dense_us=10, sparse_us=20, fusion_us=5, fetch_us=3, prf_us=7
    )
    hits = [Hit(id="a", score=2.0, rank=1), Hit(id="b", score=1.0, rank=2)]
    return SearchResult(hits=hits, timings=timings, applied=applied, **kwargs)  # type: ignore[arg-type]


def test_result_keeps_hit_order_and_every_timing() -> None:
    response = result_to_proto(_result(Query(text="q", top_k=2, mode=RetrievalMode.SPARSE)))
    assert [(h.id, h.rank) for h in response.hits] == [("a", 1), ("b", 2)]
    t = response.timings
    assert (t.total_us, t.encode_us, t.dense_us, t.sparse_us) == (100, 40, 10, 20)
    assert (t.fusion_us, t.fetch_us, t.prf_us) == (5, 3, 7)


def test_sparse_result_applies_no_fusion_and_no_prf() -> None:
    response = result_to_proto(_result(Query(text="q", top_k=2, mode=RetrievalMode.SPARSE)))
    assert response.applied.mode == pb.RETRIEVAL_MODE_SPARSE
    assert response.applied.top_k == 2
    assert not response.applied.HasField("fusion")
    assert not response.applied.HasField("prf")
    assert not response.expansion_terms


def test_hybrid_result_echoes_every_fusion_setting() -> None:
    fusion = FusionSettings(
        method=FusionMethod.RRF,
        alpha=0.25,
        normalization=Normalization.Z_SCORE,
        rrf_k=30,
        rrf_sparse_weight=2.0,
        rrf_dense_weight=0.5,
        sparse_depth=200,
        dense_depth=300,
    )
    response = result_to_proto(_result(Query(text="q", top_k=7, fusion=fusion)))
    applied = response.applied
    assert applied.mode == pb.RETRIEVAL_MODE_HYBRID
    f = applied.fusion
    assert (f.method, f.alpha, f.normalization) == (
        pb.FUSION_METHOD_RRF,
        0.25,
        pb.SCORE_NORMALIZATION_Z_SCORE,
    )
    assert (f.rrf_k, f.rrf_sparse_weight, f.rrf_dense_weight) == (30, 2.0, 0.5)
    assert (f.sparse_depth, f.dense_depth) == (200, 300)


def test_dense_result_applies_no_fusion() -> None:
    response = result_to_proto(_result(Query(text="q", mode=RetrievalMode.DENSE)))
    assert response.applied.mode == pb.RETRIEVAL_MODE_DENSE
    assert not response.applied.HasField("fusion")


def test_enabled_prf_and_expansion_terms_are_echoed_in_order() -> None:
    prf = PrfSettings(
        rm3=True,
        fb_docs=5,
        fb_terms=4,
        original_query_weight=0.75,
        vector_method=VectorPrfMethod.ROCCHIO,
        vector_depth=6,
        rocchio_alpha=0.5,
        rocchio_beta=0.5,
        hybrid_stage=PrfStage.BOTH,
    )
    terms = {"flow": 0.5, "laminar": 0.25, "plate": 0.125}
    response = result_to_proto(_result(Query(text="q", prf=prf), expansion_terms=terms))
    p = response.applied.prf
    assert (p.rm3, p.fb_docs, p.fb_terms, p.original_query_weight) == (True, 5, 4, 0.75)
    assert (p.vector_method, p.vector_depth) == (pb.VECTOR_PRF_METHOD_ROCCHIO, 6)
    assert (p.rocchio_alpha, p.rocchio_beta) == (0.5, 0.5)
    assert p.hybrid_stage == pb.PRF_STAGE_BOTH
    assert [(e.term, e.weight) for e in response.expansion_terms] == list(terms.items())


def test_document_round_trip_keeps_metadata() -> None:
    stored = StoredDoc(id="d1", ordinal=4, title="T", text="body", metadata={"k": [1, "x"]})
    message = document_to_proto(stored)
    assert (message.id, message.title, message.text) == ("d1", "T", "body")
    back = document_from_proto(message)
    assert (back.id, back.title, back.text) == ("d1", "T", "body")
    assert back.metadata == {"k": [1, "x"]}


def test_document_without_metadata_reads_as_empty() -> None:
    document = document_from_proto(index_pb2.Document(id="d", text="t"))
    assert document.metadata == {}


def _manifest(**kwargs: object) -> Manifest:
    fields: dict[str, object] = {
        "document_count": 9,
        "ordinal_count": 12,
        "created_at": "2026-01-01T00:00:00+00:00",
        "generation": 5,
        "committed_at": "2026-01-02T03:04:05+00:00",
    }
    fields.update(kwargs)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_stats_of_an_index_with_vectors() -> None:
    encoder = EncoderInfo("minilm", 384, "mean", True, 256)
    response = stats_to_proto(
        _manifest(encoder=encoder), size_bytes=4096, provider="CPUExecutionProvider", writable=True
    )
    assert (response.document_count, response.deleted_count) == (9, 3)
    assert (response.has_vectors, response.dimension, response.encoder_model_id) == (
        True,
        384,
        "minilm",
    )
    assert (response.execution_provider, response.size_bytes) == ("CPUExecutionProvider", 4096)
    assert (response.generation, response.writable) == (5, True)
    assert response.format_version == _manifest().format_version
    committed = response.last_commit_time.ToDatetime(tzinfo=UTC)
    assert committed == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_stats_of_a_bm25_only_index_never_committed() -> None:
    response = stats_to_proto(
        _manifest(encoder=None, committed_at=""), size_bytes=0, provider="", writable=False
    )
    assert (response.has_vectors, response.dimension, response.encoder_model_id) == (False, 0, "")
    assert not response.writable
    assert not response.HasField("last_commit_time")
