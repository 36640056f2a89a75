"""RunSpec → SearchRequestSpec, the in-process retriever, and the query-vector cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.engine.request import FusionOptions, PrfOptions, SearchRequestSpec
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.eval.index_cache import cache_path, corpus_sha256
from hybridsearch.eval.retrievers import (
    FUSIONS,
    MODES,
    NORMALIZATIONS,
    PRF_STAGES,
    VECTOR_PRF,
    CachedQueryEncoder,
    EngineRetriever,
    RunSpec,
)
from hybridsearch.types import (
    FusionMethod,
    Normalization,
    PrfStage,
    RetrievalMode,
    VectorPrfMethod,
)


def test_default_spec_sets_only_the_mode_and_leaves_the_rest_to_the_server() -> None:
    assert RunSpec().request("flow", 100) == SearchRequestSpec(
        text="flow", top_k=100, mode=RetrievalMode.HYBRID
    )


#: A spec that sets every setting, and the request it makes.
EVERY_SETTING = RunSpec(
    mode="sparse",
    fusion="rrf",
    alpha=0.3,
    normalization="z_score",
    rrf_k=30,
    sparse_depth=100,
    dense_depth=200,
    rm3=True,
    fb_docs=5,
    fb_terms=7,
    original_query_weight=0.6,
    vector_prf="rocchio",
    vector_depth=4,
    rocchio_alpha=0.5,
    rocchio_beta=0.5,
    prf_stage="both",
)
EVERY_SETTING_REQUEST = SearchRequestSpec(
    text="q",
    top_k=10,
    mode=RetrievalMode.SPARSE,
    fusion=FusionOptions(
        method=FusionMethod.RRF,
        alpha=0.3,
        normalization=Normalization.Z_SCORE,
        rrf_k=30,
        sparse_depth=100,
        dense_depth=200,
    ),
    prf=PrfOptions(
        rm3=True,
        fb_docs=5,
        fb_terms=7,
        original_query_weight=0.6,
        vector_method=VectorPrfMethod.ROCCHIO,
        vector_depth=4,
        rocchio_alpha=0.5,
        rocchio_beta=0.5,
        hybrid_stage=PrfStage.BOTH,
    ),
)


def test_every_setting_reaches_the_request() -> None:
    assert EVERY_SETTING.request("q", 10) == EVERY_SETTING_REQUEST


def test_every_flag_choice_names_a_domain_value() -> None:
    for mode in MODES:
        for fusion in FUSIONS:
            for normalization in NORMALIZATIONS:
                spec = RunSpec(mode=mode, fusion=fusion, normalization=normalization)
                request = spec.request("q", 10)
                assert request.mode is RetrievalMode(mode)
                assert request.fusion.method is FusionMethod(fusion)
                assert request.fusion.normalization is Normalization(normalization)
    for vector_prf in VECTOR_PRF:
        for stage in PRF_STAGES:
            prf = RunSpec(vector_prf=vector_prf, prf_stage=stage).request("q", 10).prf
            assert prf.vector_method is VectorPrfMethod(vector_prf)
            assert prf.hybrid_stage is PrfStage(stage)
    assert "none" not in VECTOR_PRF


def test_labels() -> None:
    assert RunSpec(mode="sparse", rm3=True).label() == "sparse +rm3"
    assert RunSpec(alpha=0.4).label() == "hybrid interpolation min_max a=0.4"
    assert RunSpec(fusion="rrf", vector_prf="average", prf_stage="before").label() == (
        "hybrid rrf +average (before)"
    )


class FakeEncoder:
    model_id = "fake"
    dimension = 2
    provider = "none"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return self.encode_queries(texts)


def test_cached_encoder_encodes_each_text_once() -> None:
    inner = FakeEncoder()
    cached = CachedQueryEncoder(inner)
    first = cached.encode_queries(["ab", "c", "ab"])
    again = cached.encode_queries(["c", "dddd"])
    assert inner.calls == [["ab", "c"], ["dddd"]]
    np.testing.assert_array_equal(first, [[2, 1], [1, 1], [2, 1]])
    np.testing.assert_array_equal(again, [[1, 1], [4, 1]])
    assert cached.encode_queries([]).shape == (0, 2)
    assert (cached.model_id, cached.dimension) == ("fake", 2)


def test_engine_retriever_validates_like_the_server() -> None:
    retriever = EngineRetriever(engine=None, spec=RunSpec(alpha=2.0))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"fusion\.alpha"):
        retriever.retrieve({"q1": "flow"}, top_k=10)
    bad_prf = EngineRetriever(engine=None, spec=RunSpec(rm3=True, fb_docs=0))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"prf\.fb_docs"):
        bad_prf.retrieve({"q1": "flow"}, top_k=10)


def test_cache_path_is_keyed_by_corpus_bytes_and_model(tmp_path: Path) -> None:
    corpus = tmp_path / "tiny" / "corpus.jsonl"
    corpus.parent.mkdir()
    corpus.write_text('{"_id": "a", "text": "x"}\n')
    first = cache_path(tmp_path / "cache", corpus, "m1")
    assert first.parent == tmp_path / "cache" / "tiny"
    assert first.name == f"m1-{corpus_sha256(corpus)[:16]}"
    assert cache_path(tmp_path / "cache", corpus, "m2") != first
    corpus.write_text('{"_id": "a", "text": "y"}\n')
    assert cache_path(tmp_path / "cache", corpus, "m1") != first
