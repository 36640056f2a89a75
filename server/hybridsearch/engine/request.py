"""What a search request asks for, and how it becomes a `Query`: defaults, limits, validation.

A request is described in domain terms by `SearchRequestSpec`, whose unset (None) values mean
"the server default". `resolve_query` applies the server's `QueryDefaults`, checks the result
against its `Limits`, and returns the fully resolved `Query`, or raises `InvalidArgumentError`
naming every bad field by its path (``fusion.alpha``; ``requests[2].fusion.alpha`` in a batch).
The API layer only maps its messages onto these types, and the evaluation tools build them
directly, so a run is defaulted and validated exactly as the server would do it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hybridsearch.errors import FieldViolation, InvalidArgumentError
from hybridsearch.metadata.filter import Filter, FilterLimits, check_filter
from hybridsearch.types import (
    DEFAULT_VECTOR_PRF_DEPTH,
    FusionMethod,
    FusionSettings,
    HighlightSettings,
    Normalization,
    PrfSettings,
    PrfStage,
    Query,
    RetrievalMode,
    StoredField,
    VectorPrfMethod,
)

T = TypeVar("T")

#: Snippet length bounds of a highlight, in code points (fixed by the API, not settings).
MIN_HIGHLIGHT_CHARS = 20
MAX_HIGHLIGHT_CHARS = 2000
DEFAULT_HIGHLIGHT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Unrecognized:
    """A choice the caller sent that names no known value (an enum number from a newer client).

    ``problem`` says what is wrong in the caller's own terms; it becomes the field violation.
    """

    problem: str


@dataclass(frozen=True, slots=True)
class FusionOptions:
    """How the caller wants the two arms fused; None leaves a value to the server default."""

    method: FusionMethod | Unrecognized | None = None
    alpha: float | None = None
    normalization: Normalization | Unrecognized | None = None
    rrf_k: int | None = None
    rrf_sparse_weight: float | None = None
    rrf_dense_weight: float | None = None
    sparse_depth: int | None = None
    dense_depth: int | None = None


@dataclass(frozen=True, slots=True)
class PrfOptions:
    """Pseudo-relevance feedback the caller asks for; None leaves a value to the default.

    Feedback runs only when asked for: ``rm3`` true or a ``vector_method`` other than NONE.
    An unset ``vector_depth`` takes the default of the chosen vector method.
    """

    rm3: bool = False
    vector_method: VectorPrfMethod | Unrecognized | None = None
    fb_docs: int | None = None
    fb_terms: int | None = None
    original_query_weight: float | None = None
    vector_depth: int | None = None
    rocchio_alpha: float | None = None
    rocchio_beta: float | None = None
    hybrid_stage: PrfStage | Unrecognized | None = None


@dataclass(frozen=True, slots=True)
class HighlightOptions:
    """Highlights the caller asks for; ``max_chars`` None takes the default (200)."""

    enabled: bool = False
    max_chars: int | None = None


@dataclass(frozen=True, slots=True)
class SearchRequestSpec:
    """One search request as the caller sent it, before defaults and validation.

    ``top_k`` 0 means the server default (as on the wire). A None entry of ``return_fields``
    asks for nothing (a client's unspecified value) but keeps its position, so a violation
    names the index the caller sent.
    """

    text: str
    top_k: int = 0
    mode: RetrievalMode | Unrecognized | None = None
    fusion: FusionOptions = field(default_factory=FusionOptions)
    prf: PrfOptions = field(default_factory=PrfOptions)
    explain: bool = False
    return_fields: Sequence[StoredField | Unrecognized | None] = ()
    offset: int = 0
    highlight: HighlightOptions = field(default_factory=HighlightOptions)
    filter: Filter | None = None
    allow_partial: bool = False


@dataclass(frozen=True, slots=True)
class QueryDefaults:
    """What a request's unset values become (the server's settings)."""

    top_k: int = 10
    mode: RetrievalMode = RetrievalMode.HYBRID
    fusion: FusionSettings = field(default_factory=FusionSettings)
    prf: PrfSettings = field(default_factory=PrfSettings)
    #: Feedback depth per vector PRF method when the request sets none (else ``prf.vector_depth``).
    vector_prf_depth: Mapping[VectorPrfMethod, int] = field(
        default_factory=lambda: dict(DEFAULT_VECTOR_PRF_DEPTH)
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """The most a search request may ask for (each one a server setting; these defaults)."""

    max_top_k: int = 1000  # hits in one response
    max_query_chars: int = 4096  # characters of query text
    max_depth: int = 1000  # candidates an arm passes to fusion (sparse_depth, dense_depth)
    max_rrf_k: int = 10_000  # RRF's rank offset k
    max_fb_docs: int = 100  # RM3 feedback documents
    max_fb_terms: int = 1000  # RM3 expansion terms
    max_vector_prf_depth: int = 100  # vector PRF feedback documents
    max_batch_queries: int = 256  # queries in one batch
    max_offset: int = 10_000  # hits skipped before a page (offset + top_k: at most each depth)
    max_filter_depth: int = 8  # nesting levels of a filter
    max_filter_conditions: int = 64  # conditions of a filter, nested ones included


class _Violations:
    """Field violations of one request, their paths prefixed (``requests[2].``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.items.append(FieldViolation(self.prefix + path, description))

    def choice(self, path: str, value: T | Unrecognized | None, default: T) -> T:
        """``value`` when set and known, else ``default`` (an unknown one is a violation)."""
        if isinstance(value, Unrecognized):
            self.add(path, value.problem)
            return default
        return default if value is None else value

    def count(self, path: str, value: int, most: int) -> None:
        if not 1 <= value <= most:
            self.add(path, f"must be in [1, {most}] (got {value})")

    def weight(self, path: str, value: float) -> None:
        if not (math.isfinite(value) and value >= 0.0):
            self.add(path, f"must be a finite number >= 0 (got {value})")

    def fraction(self, path: str, value: float) -> None:
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            self.add(path, f"must be a finite number in [0, 1] (got {value})")


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def _resolve_fusion(
    options: FusionOptions, defaults: FusionSettings, limits: Limits, top_k: int, out: _Violations
) -> FusionSettings:
    method = out.choice("fusion.method", options.method, defaults.method)
    normalization = out.choice(
        "fusion.normalization", options.normalization, defaults.normalization
    )
    alpha = _given(options.alpha, defaults.alpha)
    out.fraction("fusion.alpha", alpha)
    rrf_k = _given(options.rrf_k, defaults.rrf_k)
    out.count("fusion.rrf_k", rrf_k, limits.max_rrf_k)
    sparse_weight = _given(options.rrf_sparse_weight, defaults.rrf_sparse_weight)
    out.weight("fusion.rrf_sparse_weight", sparse_weight)
    dense_weight = _given(options.rrf_dense_weight, defaults.rrf_dense_weight)
    out.weight("fusion.rrf_dense_weight", dense_weight)
    if method is FusionMethod.RRF and sparse_weight == 0.0 and dense_weight == 0.0:
        # Every fused score would be 0 and the "ranking" would be by id alone.
        out.add(
            "fusion.rrf_sparse_weight",
            "rrf_sparse_weight and rrf_dense_weight cannot both be 0 with RRF",
        )
    sparse_depth = _given(options.sparse_depth, defaults.sparse_depth)
    out.count("fusion.sparse_depth", sparse_depth, limits.max_depth)
    dense_depth = _given(options.dense_depth, defaults.dense_depth)
    out.count("fusion.dense_depth", dense_depth, limits.max_depth)
    return FusionSettings(
        method=method,
        alpha=alpha,
        normalization=normalization,
        rrf_k=rrf_k,
        rrf_sparse_weight=sparse_weight,
        rrf_dense_weight=dense_weight,
        # An arm passes at least top_k candidates, or fusion could not fill the page.
        sparse_depth=max(sparse_depth, top_k),
        dense_depth=max(dense_depth, top_k),
    )


def _resolve_prf(
    options: PrfOptions, defaults: QueryDefaults, limits: Limits, out: _Violations
) -> PrfSettings:
    prf = defaults.prf
    method = out.choice("prf.vector_method", options.vector_method, prf.vector_method)
    stage = out.choice("prf.hybrid_stage", options.hybrid_stage, prf.hybrid_stage)
    fb_docs = _given(options.fb_docs, prf.fb_docs)
    out.count("prf.fb_docs", fb_docs, limits.max_fb_docs)
    fb_terms = _given(options.fb_terms, prf.fb_terms)
    out.count("prf.fb_terms", fb_terms, limits.max_fb_terms)
    method_depth = defaults.vector_prf_depth.get(method, prf.vector_depth)
    vector_depth = _given(options.vector_depth, method_depth)
    out.count("prf.vector_depth", vector_depth, limits.max_vector_prf_depth)
    weight = _given(options.original_query_weight, prf.original_query_weight)
    out.fraction("prf.original_query_weight", weight)
    rocchio_alpha = _given(options.rocchio_alpha, prf.rocchio_alpha)
    out.weight("prf.rocchio_alpha", rocchio_alpha)
    rocchio_beta = _given(options.rocchio_beta, prf.rocchio_beta)
    out.weight("prf.rocchio_beta", rocchio_beta)
    if rocchio_alpha == 0.0 and rocchio_beta == 0.0:
        out.add("prf.rocchio_alpha", "rocchio_alpha and rocchio_beta cannot both be 0")
    return PrfSettings(
        rm3=options.rm3,
        fb_docs=fb_docs,
        fb_terms=fb_terms,
        original_query_weight=weight,
        vector_method=method,
        vector_depth=vector_depth,
        rocchio_alpha=rocchio_alpha,
        rocchio_beta=rocchio_beta,
        hybrid_stage=stage,
    )


def _check_offset(
    offset: int,
    top_k: int,
    *,
    mode: RetrievalMode,
    fusion: FusionSettings,
    limits: Limits,
    out: _Violations,
) -> None:
    """``offset`` within ``max_offset``, and a hybrid page within each arm's candidates (fusion
    ranks only the ``depth`` best of each arm: hits past them do not exist for it). A
    single-arm mode ranks its arm ``offset + top_k`` deep (`ranking.sparse_depth`,
    `ranking.dense_depth`), so any offset up to ``max_offset`` has its page."""
    if not 0 <= offset <= limits.max_offset:
        out.add("offset", f"must be in [0, {limits.max_offset}] (got {offset})")
        return
    if mode is not RetrievalMode.HYBRID:
        return
    depths = [
        ("fusion.sparse_depth", fusion.sparse_depth),
        ("fusion.dense_depth", fusion.dense_depth),
    ]
    for name, depth in depths:
        if offset + top_k > depth:
            out.add(
                "offset",
                f"offset + top_k must be at most {name} ({depth}, counting the raise of a "
                f"depth below top_k to top_k) (got {offset} + {top_k})",
            )
            return


def _resolve_highlight(options: HighlightOptions, out: _Violations) -> HighlightSettings | None:
    if not options.enabled:
        return None
    max_chars = _given(options.max_chars, DEFAULT_HIGHLIGHT_CHARS)
    if not MIN_HIGHLIGHT_CHARS <= max_chars <= MAX_HIGHLIGHT_CHARS:
        out.add(
            "highlight.max_chars",
            f"must be in [{MIN_HIGHLIGHT_CHARS}, {MAX_HIGHLIGHT_CHARS}] (got {max_chars})",
        )
    return HighlightSettings(max_chars=max_chars)


def resolve_query(
    spec: SearchRequestSpec, defaults: QueryDefaults, limits: Limits, *, field_prefix: str = ""
) -> Query:
    """The fully resolved `Query` of a request: defaults applied, every limit checked.

    Raises:
        InvalidArgumentError: listing every invalid field, its path prefixed by
            ``field_prefix`` (e.g. ``requests[2].``).
    """
    out = _Violations(field_prefix)
    text = spec.text
    if len(text) > limits.max_query_chars:
        out.add("query", f"at most {limits.max_query_chars} characters (got {len(text)})")
    elif not text.strip():
        out.add("query", "must contain a non-whitespace character")
    top_k = spec.top_k or defaults.top_k
    if spec.top_k < 0 or top_k > limits.max_top_k:
        out.add("top_k", f"must be in [0, {limits.max_top_k}] (got {spec.top_k})")
    mode = out.choice("mode", spec.mode, defaults.mode)
    fusion = _resolve_fusion(spec.fusion, defaults.fusion, limits, top_k, out)
    prf = _resolve_prf(spec.prf, defaults, limits, out)
    _check_offset(spec.offset, top_k, mode=mode, fusion=fusion, limits=limits, out=out)
    highlight = _resolve_highlight(spec.highlight, out)
    if spec.filter is not None:
        filter_limits = FilterLimits(limits.max_filter_depth, limits.max_filter_conditions)
        check_filter(spec.filter, filter_limits, out.add)
    fields = set()
    for i, value in enumerate(spec.return_fields):
        if isinstance(value, Unrecognized):
            out.add(f"return_fields[{i}]", value.problem)
        elif value is not None:
            fields.add(value)
    if out.items:
        raise InvalidArgumentError(out.items)
    return Query(
        text=text,
        top_k=top_k,
        mode=mode,
        fusion=fusion,
        explain=spec.explain,
        return_fields=frozenset(fields),
        prf=prf,
        offset=spec.offset,
        highlight=highlight,
        filter=spec.filter,
        allow_partial=spec.allow_partial,
    )


def resolve_batch(
    specs: Sequence[SearchRequestSpec], defaults: QueryDefaults, limits: Limits
) -> list[Query]:
    """The resolved queries of a batch, in order.

    Raises:
        InvalidArgumentError: the batch holds no request or more than ``max_batch_queries``
            (field ``requests``), or else every invalid field of every request (fields
            ``requests[i].…``).
    """
    count = len(specs)
    if not 1 <= count <= limits.max_batch_queries:
        raise InvalidArgumentError.single(
            "requests", f"must hold 1 to {limits.max_batch_queries} requests (got {count})"
        )
    errors: list[InvalidArgumentError] = []
    queries = []
    for i, spec in enumerate(specs):
        try:
            queries.append(resolve_query(spec, defaults, limits, field_prefix=f"requests[{i}]."))
        except InvalidArgumentError as exc:
            errors.append(exc)
    if errors:
        raise InvalidArgumentError.merged(errors)
    return queries
