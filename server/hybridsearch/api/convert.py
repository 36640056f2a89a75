"""Validation and conversion between proto messages and domain objects (the only place)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2

from hybridsearch.config import ServerSettings
from hybridsearch.errors import FieldViolation, InvalidArgumentError
from hybridsearch.sparse.tantivy_index import StoredDoc
from hybridsearch.storage.manifest import Manifest
from hybridsearch.types import (
    DEFAULT_VECTOR_PRF_DEPTH,
    ArmScore,
    Document,
    FusionMethod,
    FusionSettings,
    Hit,
    Normalization,
    PrfSettings,
    PrfStage,
    Query,
    RetrievalMode,
    SearchResult,
    StoredField,
    VectorPrfMethod,
)
from hybridsearch.v1 import index_pb2
from hybridsearch.v1 import search_pb2 as pb

MODE_FROM_PROTO = {
    pb.RETRIEVAL_MODE_UNSPECIFIED: RetrievalMode.HYBRID,
    pb.RETRIEVAL_MODE_HYBRID: RetrievalMode.HYBRID,
    pb.RETRIEVAL_MODE_DENSE: RetrievalMode.DENSE,
    pb.RETRIEVAL_MODE_SPARSE: RetrievalMode.SPARSE,
}
MODE_TO_PROTO = {
    RetrievalMode.HYBRID: pb.RETRIEVAL_MODE_HYBRID,
    RetrievalMode.DENSE: pb.RETRIEVAL_MODE_DENSE,
    RetrievalMode.SPARSE: pb.RETRIEVAL_MODE_SPARSE,
}
METHOD_FROM_PROTO = {
    pb.FUSION_METHOD_INTERPOLATION: FusionMethod.INTERPOLATION,
    pb.FUSION_METHOD_RRF: FusionMethod.RRF,
}
METHOD_TO_PROTO = {v: k for k, v in METHOD_FROM_PROTO.items()}
NORMALIZATION_FROM_PROTO = {
    pb.SCORE_NORMALIZATION_MIN_MAX: Normalization.MIN_MAX,
    pb.SCORE_NORMALIZATION_Z_SCORE: Normalization.Z_SCORE,
    pb.SCORE_NORMALIZATION_NONE: Normalization.NONE,
}
NORMALIZATION_TO_PROTO = {v: k for k, v in NORMALIZATION_FROM_PROTO.items()}
FIELD_FROM_PROTO = {
    pb.STORED_FIELD_TITLE: StoredField.TITLE,
    pb.STORED_FIELD_TEXT: StoredField.TEXT,
    pb.STORED_FIELD_METADATA: StoredField.METADATA,
}
VECTOR_PRF_FROM_PROTO = {
    pb.VECTOR_PRF_METHOD_UNSPECIFIED: VectorPrfMethod.NONE,
    pb.VECTOR_PRF_METHOD_AVERAGE: VectorPrfMethod.AVERAGE,
    pb.VECTOR_PRF_METHOD_ROCCHIO: VectorPrfMethod.ROCCHIO,
}
VECTOR_PRF_TO_PROTO = {v: k for k, v in VECTOR_PRF_FROM_PROTO.items()}
PRF_STAGE_FROM_PROTO = {
    pb.PRF_STAGE_BEFORE: PrfStage.BEFORE,
    pb.PRF_STAGE_AFTER: PrfStage.AFTER,
    pb.PRF_STAGE_BOTH: PrfStage.BOTH,
}
PRF_STAGE_TO_PROTO = {v: k for k, v in PRF_STAGE_FROM_PROTO.items()}
MAX_DEPTH = 1000
MAX_RRF_K = 10_000
MAX_FB_DOCS = 100
MAX_FB_TERMS = 1000
MAX_VECTOR_PRF_DEPTH = 100


def _enum_names(enum_type: Any) -> str:
    names: list[str] = list(enum_type.keys())
    return ", ".join(n for n in names if not n.endswith("_UNSPECIFIED"))


class _Violations:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(self.prefix + field, description))


def _given(options: Any, name: str, default: Any) -> Any:
    """The value of an ``optional`` field when the caller set it, else ``default``."""
    return getattr(options, name) if options.HasField(name) else default


def _resolve_fusion(
    options: pb.FusionOptions, defaults: FusionSettings, top_k: int, out: _Violations
) -> FusionSettings:
    method = defaults.method
    if options.method != pb.FUSION_METHOD_UNSPECIFIED:
        if options.method not in METHOD_FROM_PROTO:
            out.add(
                "fusion.method",
                f"unknown value {options.method}; use {_enum_names(pb.FusionMethod)}",
            )
        else:
            method = METHOD_FROM_PROTO[options.method]
    normalization = defaults.normalization
    if options.normalization != pb.SCORE_NORMALIZATION_UNSPECIFIED:
        if options.normalization not in NORMALIZATION_FROM_PROTO:
            out.add(
                "fusion.normalization",
                f"unknown value {options.normalization}; use {_enum_names(pb.ScoreNormalization)}",
            )
        else:
            normalization = NORMALIZATION_FROM_PROTO[options.normalization]
    alpha = _given(options, "alpha", defaults.alpha)
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        out.add("fusion.alpha", f"must be a finite number in [0, 1] (got {alpha})")
    rrf_k = _given(options, "rrf_k", defaults.rrf_k)
    if not 1 <= rrf_k <= MAX_RRF_K:
        out.add("fusion.rrf_k", f"must be in [1, {MAX_RRF_K}] (got {rrf_k})")
    weights = {}
    for name in ("rrf_sparse_weight", "rrf_dense_weight"):
        value = _given(options, name, getattr(defaults, name))
        if not (math.isfinite(value) and value >= 0.0):
            out.add(f"fusion.{name}", f"must be a finite number >= 0 (got {value})")
        weights[name] = value
    depths = {}
    for name in ("sparse_depth", "dense_depth"):
        value = _given(options, name, getattr(defaults, name))
        if not 1 <= value <= MAX_DEPTH:
            out.add(f"fusion.{name}", f"must be in [1, {MAX_DEPTH}] (got {value})")
        depths[name] = max(value, top_k)
    return FusionSettings(
        method=method,
        alpha=alpha,
        normalization=normalization,
        rrf_k=rrf_k,
        rrf_sparse_weight=weights["rrf_sparse_weight"],
        rrf_dense_weight=weights["rrf_dense_weight"],
        sparse_depth=depths["sparse_depth"],
        dense_depth=depths["dense_depth"],
    )


def _resolve_prf(options: pb.PrfOptions, out: _Violations) -> PrfSettings:
    defaults = PrfSettings()
    method = VECTOR_PRF_FROM_PROTO.get(options.vector_method)
    if method is None:
        out.add(
            "prf.vector_method",
            f"unknown value {options.vector_method}; use {_enum_names(pb.VectorPrfMethod)}",
        )
        method = VectorPrfMethod.NONE
    stage = defaults.hybrid_stage
    if options.hybrid_stage != pb.PRF_STAGE_UNSPECIFIED:
        if options.hybrid_stage not in PRF_STAGE_FROM_PROTO:
            out.add(
                "prf.hybrid_stage",
                f"unknown value {options.hybrid_stage}; use {_enum_names(pb.PrfStage)}",
            )
        else:
            stage = PRF_STAGE_FROM_PROTO[options.hybrid_stage]
    counts = {}
    default_depth = DEFAULT_VECTOR_PRF_DEPTH.get(method, defaults.vector_depth)
    for name, default, most in (
        ("fb_docs", defaults.fb_docs, MAX_FB_DOCS),
        ("fb_terms", defaults.fb_terms, MAX_FB_TERMS),
        ("vector_depth", default_depth, MAX_VECTOR_PRF_DEPTH),
    ):
        value = _given(options, name, default)
        if not 1 <= value <= most:
            out.add(f"prf.{name}", f"must be in [1, {most}] (got {value})")
        counts[name] = value
    weight = _given(options, "original_query_weight", defaults.original_query_weight)
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        out.add("prf.original_query_weight", f"must be a finite number in [0, 1] (got {weight})")
    rocchio = {}
    for name in ("rocchio_alpha", "rocchio_beta"):
        value = _given(options, name, getattr(defaults, name))
        if not (math.isfinite(value) and value >= 0.0):
            out.add(f"prf.{name}", f"must be a finite number >= 0 (got {value})")
        rocchio[name] = value
    if rocchio["rocchio_alpha"] == 0.0 and rocchio["rocchio_beta"] == 0.0:
        out.add("prf.rocchio_alpha", "rocchio_alpha and rocchio_beta cannot both be 0")
    return PrfSettings(
        rm3=options.rm3,
        fb_docs=counts["fb_docs"],
        fb_terms=counts["fb_terms"],
        original_query_weight=weight,
        vector_method=method,
        vector_depth=counts["vector_depth"],
        rocchio_alpha=rocchio["rocchio_alpha"],
        rocchio_beta=rocchio["rocchio_beta"],
        hybrid_stage=stage,
    )


def query_from_proto(
    request: pb.SearchRequest, settings: ServerSettings, *, field_prefix: str = ""
) -> Query:
    """Validate a SearchRequest and resolve it against the server defaults.

    Raises `InvalidArgumentError` listing every invalid field (paths prefixed by
    ``field_prefix``, e.g. ``requests[2].``).
    """
    out = _Violations(field_prefix)
    text = request.query
    if len(text) > settings.max_query_chars:
        out.add("query", f"at most {settings.max_query_chars} characters (got {len(text)})")
    elif not text.strip():
        out.add("query", "must contain a non-whitespace character")
    top_k = request.top_k or settings.default_top_k
    if top_k > settings.max_top_k:
        out.add("top_k", f"must be in [0, {settings.max_top_k}] (got {request.top_k})")
    mode = MODE_FROM_PROTO.get(request.mode)
    if mode is None:
        out.add("mode", f"unknown value {request.mode}; use {_enum_names(pb.RetrievalMode)}")
    fusion = _resolve_fusion(request.fusion, settings.fusion_defaults, top_k, out)
    prf = _resolve_prf(request.prf, out)
    fields = set()
    for i, value in enumerate(request.return_fields):
        if value == pb.STORED_FIELD_UNSPECIFIED:
            continue
        if value not in FIELD_FROM_PROTO:
            out.add(
                f"return_fields[{i}]", f"unknown value {value}; use {_enum_names(pb.StoredField)}"
            )
        else:
            fields.add(FIELD_FROM_PROTO[value])
    if out.items:
        raise InvalidArgumentError(out.items)
    return Query(
        text=text,
        top_k=top_k,
        mode=mode or RetrievalMode.HYBRID,
        fusion=fusion,
        explain=request.explain,
        return_fields=frozenset(fields),
        prf=prf,
    )


def _arm_to_proto(arm: ArmScore, message: pb.ArmScore) -> None:
    message.raw_score = arm.raw_score
    message.rank = arm.rank
    message.normalized_score = arm.normalized_score


def _metadata_to_struct(metadata: Mapping[str, Any], message: struct_pb2.Struct) -> None:
    message.update(dict(metadata))


def hit_to_proto(hit: Hit, message: pb.Hit) -> None:
    """Fill a proto Hit from a domain Hit."""
    message.id = hit.id
    message.score = hit.score
    message.rank = hit.rank
    if hit.title is not None:
        message.title = hit.title
    if hit.text is not None:
        message.text = hit.text
    if hit.metadata is not None:
        _metadata_to_struct(hit.metadata, message.metadata)
    if hit.explanation is not None:
        explanation = message.explanation
        explanation.fused_score = hit.explanation.fused_score
        if hit.explanation.sparse is not None:
            _arm_to_proto(hit.explanation.sparse, explanation.sparse)
        if hit.explanation.dense is not None:
            _arm_to_proto(hit.explanation.dense, explanation.dense)


def fusion_to_proto(fusion: FusionSettings, message: pb.FusionOptions) -> None:
    """Fill FusionOptions with every value of resolved settings."""
    message.method = METHOD_TO_PROTO[fusion.method]
    message.alpha = fusion.alpha
    message.normalization = NORMALIZATION_TO_PROTO[fusion.normalization]
    message.rrf_k = fusion.rrf_k
    message.rrf_sparse_weight = fusion.rrf_sparse_weight
    message.rrf_dense_weight = fusion.rrf_dense_weight
    message.sparse_depth = fusion.sparse_depth
    message.dense_depth = fusion.dense_depth


def prf_to_proto(prf: PrfSettings, message: pb.PrfOptions) -> None:
    """Fill PrfOptions with every value of resolved PRF settings."""
    message.rm3 = prf.rm3
    message.fb_docs = prf.fb_docs
    message.fb_terms = prf.fb_terms
    message.original_query_weight = prf.original_query_weight
    message.vector_method = VECTOR_PRF_TO_PROTO[prf.vector_method]
    message.vector_depth = prf.vector_depth
    message.rocchio_alpha = prf.rocchio_alpha
    message.rocchio_beta = prf.rocchio_beta
    message.hybrid_stage = PRF_STAGE_TO_PROTO[prf.hybrid_stage]


def result_to_proto(result: SearchResult) -> pb.SearchResponse:
    """A SearchResponse for a domain result."""
    response = pb.SearchResponse()
    for hit in result.hits:
        hit_to_proto(hit, response.hits.add())
    t = result.timings
    timings = response.timings
    timings.total_us = t.total_us
    timings.encode_us = t.encode_us
    timings.dense_us = t.dense_us
    timings.sparse_us = t.sparse_us
    timings.fusion_us = t.fusion_us
    timings.fetch_us = t.fetch_us
    timings.prf_us = t.prf_us
    applied = result.applied
    response.applied.mode = MODE_TO_PROTO[applied.mode]
    response.applied.top_k = applied.top_k
    if applied.mode is RetrievalMode.HYBRID:
        fusion_to_proto(applied.fusion, response.applied.fusion)
    if applied.prf.enabled:
        prf_to_proto(applied.prf, response.applied.prf)
    for term, weight in result.expansion_terms.items():
        response.expansion_terms.add(term=term, weight=weight)
    return response


def document_from_proto(message: index_pb2.Document) -> Document:
    """A domain Document from a proto one (checked later by `ingest.document_problem`)."""
    metadata = json_format.MessageToDict(message.metadata) if message.HasField("metadata") else {}
    return Document(id=message.id, title=message.title, text=message.text, metadata=metadata)


def document_to_proto(stored: StoredDoc) -> index_pb2.Document:
    """A proto Document from stored fields."""
    message = index_pb2.Document(id=stored.id, title=stored.title, text=stored.text)
    _metadata_to_struct(stored.metadata, message.metadata)
    return message


def stats_to_proto(
    manifest: Manifest, *, size_bytes: int, provider: str, writable: bool
) -> index_pb2.GetIndexStatsResponse:
    """GetIndexStatsResponse for a committed manifest."""
    encoder = manifest.encoder
    response = index_pb2.GetIndexStatsResponse(
        document_count=manifest.document_count,
        deleted_count=manifest.deleted_count,
        has_vectors=encoder is not None,
        dimension=encoder.dimension if encoder is not None else 0,
        encoder_model_id=encoder.model_id if encoder is not None else "",
        execution_provider=provider,
        size_bytes=size_bytes,
        format_version=manifest.format_version,
        generation=manifest.generation,
        writable=writable,
    )
    try:
        response.last_commit_time.FromDatetime(datetime.fromisoformat(manifest.committed_at))
    except ValueError:
        response.ClearField("last_commit_time")
    return response
