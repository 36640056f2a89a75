"""`eval --server`: a RunSpec's requests on the wire leave unset settings unset."""

from __future__ import annotations

from hybridsearch.cli.eval_client import GrpcRetriever
from hybridsearch.eval.retrievers import RunSpec
from hybridsearch.v1 import search_pb2 as pb


def _requests(spec: RunSpec, queries: dict[str, str], top_k: int) -> list[pb.SearchRequest]:
    return list(GrpcRetriever(None, spec).batch_request(queries, top_k=top_k).requests)


def test_default_spec_sets_only_the_mode_and_leaves_the_rest_to_the_server() -> None:
    [request] = _requests(RunSpec(), {"q1": "flow"}, 100)
    assert (request.query, request.top_k, request.mode) == ("flow", 100, pb.RETRIEVAL_MODE_HYBRID)
    assert not request.fusion.HasField("alpha")
    assert request.fusion.method == pb.FUSION_METHOD_UNSPECIFIED
    assert not request.prf.rm3
    assert request.prf.vector_method == pb.VECTOR_PRF_METHOD_UNSPECIFIED
    assert not request.prf.HasField("fb_docs")


def test_every_setting_reaches_the_wire_in_query_order() -> None:
    spec = RunSpec(
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
    first, second = _requests(spec, {"q1": "one", "q2": "two"}, 10)
    assert (first.query, second.query) == ("one", "two")
    assert first.mode == pb.RETRIEVAL_MODE_SPARSE
    assert first.fusion == pb.FusionOptions(
        method=pb.FUSION_METHOD_RRF,
        alpha=0.3,
        normalization=pb.SCORE_NORMALIZATION_Z_SCORE,
        rrf_k=30,
        sparse_depth=100,
        dense_depth=200,
    )
    assert first.prf == pb.PrfOptions(
        rm3=True,
        fb_docs=5,
        fb_terms=7,
        original_query_weight=0.6,
        vector_method=pb.VECTOR_PRF_METHOD_ROCCHIO,
        vector_depth=4,
        rocchio_alpha=0.5,
        rocchio_beta=0.5,
        hybrid_stage=pb.PRF_STAGE_BOTH,
    )
