"""Conversion between proto messages and domain objects (the only place).

Requests map onto the domain's `SearchRequestSpec`; their defaults, limits and validation are
the domain's (`engine.request.resolve_query`). An enum value this server does not know maps
to `Unrecognized`, which the domain reports as a field violation with the others.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from hybridsearch.engine.request import (
    FusionOptions,
    HighlightOptions,
    PrfOptions,
    SearchRequestSpec,
    Unrecognized,
)
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.metadata import filter as flt
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.storage.manifest import Manifest
from hybridsearch.types import (
    ArmScore,
    Document,
    FusionMethod,
    FusionSettings,
    Hit,
    Normalization,
    PrfSettings,
    PrfStage,
    RetrievalMode,
    SearchResult,
    StoredField,
    VectorPrfMethod,
)
from hybridsearch.v1 import filter_pb2, index_pb2
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
    pb.FUSION_METHOD_ADAPTIVE: FusionMethod.ADAPTIVE,
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
FIELD_TO_PROTO = {v: k for k, v in FIELD_FROM_PROTO.items()}
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
# Number fields of the request's options that are `optional` on the wire, same name as the
# domain options' fields.
_FUSION_NUMBERS = (
    "alpha",
    "rrf_k",
    "rrf_sparse_weight",
    "rrf_dense_weight",
    "sparse_depth",
    "dense_depth",
)
_PRF_NUMBERS = (
    "fb_docs",
    "fb_terms",
    "original_query_weight",
    "vector_depth",
    "rocchio_alpha",
    "rocchio_beta",
)
E = TypeVar("E", bound=enum.Enum)


def _enum_names(enum_type: Any) -> str:
    names: list[str] = list(enum_type.keys())
    return ", ".join(n for n in names if not n.endswith("_UNSPECIFIED"))


def _choice(value: int, table: Mapping[Any, E], enum_type: Any) -> E | Unrecognized | None:
    """A proto enum value as a domain choice: None for *_UNSPECIFIED (always 0), the domain
    value when known, else `Unrecognized` saying which values exist."""
    if value == 0:
        return None
    known = table.get(value)
    if known is None:
        return Unrecognized(f"unknown value {value}; use {_enum_names(enum_type)}")
    return known


def _given(options: Any, name: str) -> Any:
    """The value of an ``optional`` field when the caller set it, else None (the default)."""
    return getattr(options, name) if options.HasField(name) else None


def _fusion_from_proto(options: pb.FusionOptions) -> FusionOptions:
    return FusionOptions(
        method=_choice(options.method, METHOD_FROM_PROTO, pb.FusionMethod),
        alpha=_given(options, "alpha"),
        normalization=_choice(
            options.normalization, NORMALIZATION_FROM_PROTO, pb.ScoreNormalization
        ),
        rrf_k=_given(options, "rrf_k"),
        rrf_sparse_weight=_given(options, "rrf_sparse_weight"),
        rrf_dense_weight=_given(options, "rrf_dense_weight"),
        sparse_depth=_given(options, "sparse_depth"),
        dense_depth=_given(options, "dense_depth"),
    )


def _prf_from_proto(options: pb.PrfOptions) -> PrfOptions:
    return PrfOptions(
        rm3=options.rm3,
        vector_method=_choice(options.vector_method, VECTOR_PRF_FROM_PROTO, pb.VectorPrfMethod),
        fb_docs=_given(options, "fb_docs"),
        fb_terms=_given(options, "fb_terms"),
        original_query_weight=_given(options, "original_query_weight"),
        vector_depth=_given(options, "vector_depth"),
        rocchio_alpha=_given(options, "rocchio_alpha"),
        rocchio_beta=_given(options, "rocchio_beta"),
        hybrid_stage=_choice(options.hybrid_stage, PRF_STAGE_FROM_PROTO, pb.PrfStage),
    )


# What an unset options message maps to (most requests set none): no conversion per request.
_NO_FUSION = FusionOptions()
_NO_PRF = PrfOptions()
_NO_HIGHLIGHT = HighlightOptions()


def request_from_proto(request: pb.SearchRequest) -> SearchRequestSpec:
    """The domain description of a SearchRequest (defaults and checks: `resolve_query`)."""
    has = request.HasField
    highlight = request.highlight
    return SearchRequestSpec(
        text=request.query,
        top_k=request.top_k,
        mode=_choice(request.mode, MODE_FROM_PROTO, pb.RetrievalMode),
        fusion=_fusion_from_proto(request.fusion) if has("fusion") else _NO_FUSION,
        prf=_prf_from_proto(request.prf) if has("prf") else _NO_PRF,
        explain=request.explain,
        return_fields=tuple(
            _choice(value, FIELD_FROM_PROTO, pb.StoredField) for value in request.return_fields
        ),
        offset=request.offset,
        highlight=(
            HighlightOptions(enabled=highlight.enabled, max_chars=_given(highlight, "max_chars"))
            if has("highlight")
            else _NO_HIGHLIGHT
        ),
        filter=filter_from_proto(request.filter) if has("filter") else None,
        allow_partial=request.allow_partial,
    )


_CONDITIONS = "filter, match, range, is_null, exists, has_id"


def filter_from_proto(message: filter_pb2.Filter) -> flt.Filter:
    """The domain filter of a proto one (its checks: `metadata.filter`)."""
    return flt.Filter(
        must=tuple(_condition_from_proto(c) for c in message.must),
        should=tuple(_condition_from_proto(c) for c in message.should),
        min_should_match=message.min_should_match,
        must_not=tuple(_condition_from_proto(c) for c in message.must_not),
    )


def _condition_from_proto(message: filter_pb2.Condition) -> flt.Condition:
    kind = message.WhichOneof("condition")
    if kind == "filter":
        return filter_from_proto(message.filter)
    if kind == "match":
        values = tuple(_match_value_from_proto(v) for v in message.match.any)
        return flt.Match(message.match.field, values)
    if kind == "range":
        r = message.range
        return flt.Range(
            r.field,
            **{
                name: _bound_from_proto(getattr(r, name), name) if r.HasField(name) else None
                for name in ("gt", "gte", "lt", "lte")
            },
        )
    if kind == "is_null":
        return flt.IsNull(message.is_null.field)
    if kind == "exists":
        return flt.Exists(message.exists.field)
    if kind == "has_id":
        return flt.HasId(tuple(message.has_id.ids))
    return flt.Missing(f"set one of {_CONDITIONS}")


def _match_value_from_proto(message: filter_pb2.MatchValue) -> flt.MatchValue:
    kind = message.WhichOneof("value")
    if kind is None:
        return flt.Missing("set one of keyword, integer, boolean")
    value: str | int | bool = getattr(message, kind)
    return value


def _bound_from_proto(message: filter_pb2.RangeBound, operator: str) -> flt.Bound:
    kind = message.WhichOneof("value")
    if kind == "integer":
        return message.integer
    if kind == "number":
        return message.number
    if kind == "datetime":
        try:
            return _datetime_bound(message.datetime, operator)
        except (ValueError, OverflowError):  # seconds or nanos out of Timestamp's range
            return flt.Missing(
                "must be a timestamp from 0001-01-01 to 9999-12-31 UTC with nanos in [0, 999999999]"
            )
    return flt.Missing("set one of integer, number, datetime")


_ONE_MICROSECOND = timedelta(microseconds=1)


def _datetime_bound(stamp: Timestamp, operator: str) -> datetime:
    """A Timestamp bound at the microsecond precision of stored datetimes, the same answer for
    every stored value: a bound between two microseconds is the later one for ``gte`` and
    ``lt`` (12:00:00 is neither >= 12:00:00.000000001 nor not < it), the earlier one (the
    truncation) for ``gt`` and ``lte``."""
    bound = stamp.ToDatetime(tzinfo=UTC)  # truncated to the microsecond
    if stamp.nanos % 1000 and operator in ("gte", "lt"):
        with contextlib.suppress(OverflowError):  # past 9999-12-31T23:59:59.999999: as is
            bound += _ONE_MICROSECOND
    return bound


def filter_to_proto(filter_: flt.Filter, message: filter_pb2.Filter) -> None:
    """Fill ``message`` with a domain filter (a client's request)."""
    for name in ("must", "should", "must_not"):
        for condition in getattr(filter_, name):
            _condition_to_proto(condition, getattr(message, name).add())
    message.min_should_match = filter_.min_should_match


def _condition_to_proto(condition: flt.Condition, message: filter_pb2.Condition) -> None:
    if isinstance(condition, flt.Filter):
        message.filter.SetInParent()
        filter_to_proto(condition, message.filter)
    elif isinstance(condition, flt.Match):
        message.match.field = condition.field
        for value in condition.any:
            entry = message.match.any.add()
            if isinstance(value, bool):
                entry.boolean = value
            elif isinstance(value, int):
                entry.integer = value
            elif isinstance(value, str):
                entry.keyword = value
    elif isinstance(condition, flt.Range):
        message.range.field = condition.field
        for name in ("gt", "gte", "lt", "lte"):
            bound = getattr(condition, name)
            target = getattr(message.range, name)
            if isinstance(bound, datetime):
                target.datetime.FromDatetime(bound)
            elif isinstance(bound, int):
                target.integer = bound
            elif isinstance(bound, float):
                target.number = bound
    elif isinstance(condition, flt.IsNull):
        message.is_null.field = condition.field
    elif isinstance(condition, flt.Exists):
        message.exists.field = condition.field
    elif isinstance(condition, flt.HasId):
        message.has_id.ids.extend(condition.ids)


def _known(value: E | Unrecognized) -> E:
    if isinstance(value, Unrecognized):
        raise ValueError(f"cannot send an unrecognized choice ({value.problem})")
    return value


def _set_given(message: Any, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if value is not None:
            setattr(message, name, value)


def request_to_proto(spec: SearchRequestSpec) -> pb.SearchRequest:
    """The SearchRequest a client sends for ``spec``; unset values stay unset on the wire.

    Raises:
        ValueError: ``spec`` holds an `Unrecognized` choice (it has no wire value).
    """
    request = pb.SearchRequest(query=spec.text, top_k=spec.top_k, explain=spec.explain)
    if spec.filter is not None:
        request.filter.SetInParent()
        filter_to_proto(spec.filter, request.filter)
    if spec.mode is not None:
        request.mode = MODE_TO_PROTO[_known(spec.mode)]
    fusion = spec.fusion
    if fusion.method is not None:
        request.fusion.method = METHOD_TO_PROTO[_known(fusion.method)]
    if fusion.normalization is not None:
        request.fusion.normalization = NORMALIZATION_TO_PROTO[_known(fusion.normalization)]
    _set_given(
        request.fusion,
        {name: getattr(fusion, name) for name in _FUSION_NUMBERS},
    )
    prf = spec.prf
    if prf.rm3:
        request.prf.rm3 = True
    if prf.vector_method is not None:
        request.prf.vector_method = VECTOR_PRF_TO_PROTO[_known(prf.vector_method)]
    if prf.hybrid_stage is not None:
        request.prf.hybrid_stage = PRF_STAGE_TO_PROTO[_known(prf.hybrid_stage)]
    _set_given(request.prf, {name: getattr(prf, name) for name in _PRF_NUMBERS})
    for value in spec.return_fields:
        if value is not None:
            request.return_fields.append(FIELD_TO_PROTO[_known(value)])
    request.offset = spec.offset
    if spec.highlight.enabled:
        request.highlight.enabled = True
    _set_given(request.highlight, {"max_chars": spec.highlight.max_chars})
    return request


def _arm_to_proto(arm: ArmScore, message: pb.ArmScore) -> None:
    message.raw_score = arm.raw_score
    message.rank = arm.rank
    message.normalized_score = arm.normalized_score


def _metadata_to_struct(metadata: Mapping[str, Any], message: struct_pb2.Struct) -> None:
    try:
        message.update(dict(metadata))
    except (OverflowError, ValueError):
        # A stored integer beyond a double's range (an older corpus could carry one; a Struct
        # holds numbers as doubles): shown as its decimal string rather than failing the call.
        message.Clear()
        message.update(_struct_safe(dict(metadata)))


def _struct_safe(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return str(value)
        return value
    if isinstance(value, dict):
        return {k: _struct_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_struct_safe(v) for v in value]
    return value


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
    for highlight in hit.highlights:
        message.highlights.add(
            field=FIELD_TO_PROTO[highlight.field],
            snippet=highlight.snippet,
            matches=[pb.TextSpan(start=s.start, end=s.end) for s in highlight.matches],
        )


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
    response.applied.offset = applied.offset
    if applied.mode is RetrievalMode.HYBRID:
        fusion_to_proto(applied.fusion, response.applied.fusion)
    if applied.prf.enabled:
        prf_to_proto(applied.prf, response.applied.prf)
    for term, weight in result.expansion_terms.items():
        response.expansion_terms.add(term=term, weight=weight)
    if result.adaptive is not None:
        response.adaptive_fusion.alpha = result.adaptive.alpha
        for name, value in result.adaptive.features.items():
            response.adaptive_fusion.features.add(name=name, value=value)
    response.missing_shards.extend(result.missing_shards)
    return response


NON_FINITE_METADATA = "numbers must be finite (NaN and infinities are not accepted)"


def document_from_proto(message: index_pb2.Document) -> Document:
    """A domain Document from a proto one (checked later by `document_rules.document_problem`).

    Raises:
        InvalidArgumentError: the metadata holds a NaN or infinite number (field
            ``metadata``), which JSON, and so the stored document, cannot hold.
    """
    try:
        metadata = (
            json_format.MessageToDict(message.metadata) if message.HasField("metadata") else {}
        )
    except ValueError as exc:
        raise InvalidArgumentError.single("metadata", NON_FINITE_METADATA) from exc
    return Document(
        id=message.id, title=message.title, text=message.text, metadata=_integral(metadata)
    )


_EXACT_INTEGERS = 2**53  # doubles are exact integers up to here


def _integral(value: Any) -> Any:
    """A Struct's JSON with integral numbers as ints: a Struct holds every number as a double,
    so an integer metadata field would otherwise never receive an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


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
