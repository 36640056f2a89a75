"""Adaptive fusion over gRPC on the tiny corpus with vectors of the default model (golden).

The golden alpha and features are those of the shipped model
(`hybridsearch/fusion/adaptive_model.json`); retraining it changes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.fusion.adaptive import FEATURE_NAMES
from hybridsearch.types import FusionMethod
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.integration.in_process import InProcessServer, in_process_server

QUERY = "airflow over an aircraft wing"
ADAPTIVE = pb.FusionOptions(method=pb.FUSION_METHOD_ADAPTIVE)
# Min-max at alpha 0.5 ranks the same five; the model leans a little to the dense side.
GOLDEN_IDS = ["d03", "d11", "d01", "d07", "d06"]
GOLDEN_ALPHA = 0.523791
GOLDEN_FEATURES = {
    "dense_top": 0.495034,  # cosine of d11
    "dense_drop": 0.472271,  # to the last (12th) document: fewer than 10 in the list
    "sparse_drop": 0.0,  # one BM25 hit, "wing" (d03): "an" is a stopword, left out
    "overlap": 0.1,  # d03 in both top-10s
    "query_terms": 1.609438,  # log(1 + 4): "an" left out
    "mean_idf": 0.915701,
}


@pytest.fixture(scope="module")
def stub(hybrid_server: InProcessServer) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(hybrid_server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


def test_explain_shows_the_chosen_alpha_and_features(
    stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, explain=True, fusion=ADAPTIVE))
    chosen = response.adaptive_fusion
    assert response.applied.fusion.method == pb.FUSION_METHOD_ADAPTIVE
    assert [f.name for f in chosen.features] == list(FEATURE_NAMES)
    assert {f.name: f.value for f in chosen.features} == pytest.approx(GOLDEN_FEATURES, abs=1e-5)
    assert chosen.alpha == pytest.approx(GOLDEN_ALPHA, abs=1e-5)
    assert [h.id for h in response.hits] == GOLDEN_IDS
    for hit in response.hits:  # min-max interpolation at the chosen alpha
        e = hit.explanation
        sparse = e.sparse.normalized_score if e.HasField("sparse") else 0.0
        dense = e.dense.normalized_score if e.HasField("dense") else 0.0
        expected = chosen.alpha * dense + (1 - chosen.alpha) * sparse
        assert math.isclose(hit.score, expected, abs_tol=1e-9)


def test_without_explain_nothing_is_shown(stub: search_pb2_grpc.SearchServiceStub) -> None:
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, fusion=ADAPTIVE))
    assert not response.HasField("adaptive_fusion")
    assert [h.id for h in response.hits] == GOLDEN_IDS


def test_other_methods_show_no_adaptive_choice(stub: search_pb2_grpc.SearchServiceStub) -> None:
    response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, explain=True))
    assert not response.HasField("adaptive_fusion")


def test_adaptive_as_the_server_default(tiny_hybrid_index: Path, model_dir: Path) -> None:
    settings = ServerSettings(
        index=tiny_hybrid_index, model=model_dir, port=0, fusion_method=FusionMethod.ADAPTIVE
    )
    with in_process_server(settings) as server, grpc.insecure_channel(server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        response = stub.Search(pb.SearchRequest(query=QUERY, top_k=5, explain=True))
    assert response.applied.fusion.method == pb.FUSION_METHOD_ADAPTIVE
    assert response.adaptive_fusion.alpha == pytest.approx(GOLDEN_ALPHA, abs=1e-5)
    assert [h.id for h in response.hits] == GOLDEN_IDS


def test_applied_fusion_is_what_the_query_was_fused_with(
    stub: search_pb2_grpc.SearchServiceStub,
) -> None:
    """The request's alpha and normalisation are not used by ADAPTIVE: `applied` says the
    chosen alpha and the model's min-max (with or without explain)."""
    fusion = pb.FusionOptions(
        method=pb.FUSION_METHOD_ADAPTIVE, alpha=0.9, normalization=pb.SCORE_NORMALIZATION_Z_SCORE
    )
    for explain in (True, False):
        request = pb.SearchRequest(query=QUERY, top_k=5, explain=explain, fusion=fusion)
        response = stub.Search(request)
        applied = response.applied.fusion
        assert applied.method == pb.FUSION_METHOD_ADAPTIVE
        assert applied.alpha == pytest.approx(GOLDEN_ALPHA, abs=1e-5)
        assert applied.normalization == pb.SCORE_NORMALIZATION_MIN_MAX
