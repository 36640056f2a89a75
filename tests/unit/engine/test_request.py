"""The request model: defaults applied, every limit checked with its field path, batches."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from hybridsearch.engine.request import (
    FusionOptions,
    HighlightOptions,
    Limits,
    PrfOptions,
    QueryDefaults,
    SearchRequestSpec,
    Unrecognized,
    resolve_batch,
    resolve_query,
)
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.types import (
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

DEFAULTS = QueryDefaults()
LIMITS = Limits()

RAISED = "counting the raise of a depth below top_k to top_k"


def resolve(spec: SearchRequestSpec, **limits: int) -> Query:
    return resolve_query(spec, DEFAULTS, Limits(**limits))


def violations(spec: SearchRequestSpec, prefix: str = "", **limits: int) -> list[tuple[str, str]]:
    with pytest.raises(InvalidArgumentError) as info:
        resolve_query(spec, DEFAULTS, Limits(**limits), field_prefix=prefix)
    return [(v.field, v.description) for v in info.value.violations]


def test_default_limits_are_the_documented_ones() -> None:
    assert Limits() == Limits(
        max_top_k=1000,
        max_query_chars=4096,
        max_depth=1000,
        max_rrf_k=10_000,
        max_fb_docs=100,
        max_fb_terms=1000,
        max_vector_prf_depth=100,
        max_batch_queries=256,
        max_offset=10_000,
    )


def test_an_empty_request_takes_every_default() -> None:
    assert resolve(SearchRequestSpec("flow")) == Query(
        text="flow",
        top_k=10,
        mode=RetrievalMode.HYBRID,
        fusion=FusionSettings(),
        explain=False,
        return_fields=frozenset(),
        prf=PrfSettings(),
    )


def test_the_server_defaults_fill_what_the_request_leaves_unset() -> None:
    fusion = FusionSettings(
        method=FusionMethod.RRF,
        alpha=0.2,
        normalization=Normalization.Z_SCORE,
        rrf_k=30,
        sparse_depth=40,
        dense_depth=50,
    )
    defaults = QueryDefaults(top_k=7, mode=RetrievalMode.SPARSE, fusion=fusion)
    query = resolve_query(SearchRequestSpec("flow"), defaults, LIMITS)
    assert (query.top_k, query.mode, query.fusion) == (7, RetrievalMode.SPARSE, fusion)


def test_every_value_the_request_sets_wins() -> None:
    spec = SearchRequestSpec(
        "flow",
        top_k=5,
        mode=RetrievalMode.DENSE,
        fusion=FusionOptions(
            method=FusionMethod.RRF,
            alpha=0.25,
            normalization=Normalization.NONE,
            rrf_k=20,
            rrf_sparse_weight=0.5,
            rrf_dense_weight=2.0,
            sparse_depth=30,
            dense_depth=40,
        ),
        prf=PrfOptions(
            rm3=True,
            vector_method=VectorPrfMethod.ROCCHIO,
            fb_docs=4,
            fb_terms=6,
            original_query_weight=0.7,
            vector_depth=8,
            rocchio_alpha=0.1,
            rocchio_beta=0.9,
            hybrid_stage=PrfStage.BOTH,
        ),
        explain=True,
        return_fields=(StoredField.TITLE, StoredField.METADATA),
    )
    assert resolve(spec) == Query(
        text="flow",
        top_k=5,
        mode=RetrievalMode.DENSE,
        fusion=FusionSettings(FusionMethod.RRF, 0.25, Normalization.NONE, 20, 0.5, 2.0, 30, 40),
        explain=True,
        return_fields=frozenset({StoredField.TITLE, StoredField.METADATA}),
        prf=PrfSettings(True, 4, 6, 0.7, VectorPrfMethod.ROCCHIO, 8, 0.1, 0.9, PrfStage.BOTH),
    )


@pytest.mark.parametrize(
    ("method", "depth"),
    [(VectorPrfMethod.NONE, 3), (VectorPrfMethod.AVERAGE, 3), (VectorPrfMethod.ROCCHIO, 5)],
)
def test_vector_prf_depth_defaults_per_method(method: VectorPrfMethod, depth: int) -> None:
    query = resolve(SearchRequestSpec("flow", prf=PrfOptions(vector_method=method)))
    assert (query.prf.vector_method, query.prf.vector_depth) == (method, depth)
    explicit = PrfOptions(vector_method=method, vector_depth=9)
    assert resolve(SearchRequestSpec("flow", prf=explicit)).prf.vector_depth == 9


def test_each_arm_passes_at_least_top_k_candidates() -> None:
    spec = SearchRequestSpec("flow", top_k=50, fusion=FusionOptions(sparse_depth=10))
    fusion = resolve(spec).fusion
    assert (fusion.sparse_depth, fusion.dense_depth) == (50, 1000)
    assert resolve(SearchRequestSpec("flow", top_k=50)).fusion.sparse_depth == 1000


def test_return_fields_skip_unset_entries() -> None:
    spec = SearchRequestSpec("flow", return_fields=(None, StoredField.TEXT, StoredField.TEXT))
    assert resolve(spec).return_fields == frozenset({StoredField.TEXT})


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("x" * 11, "at most 10 characters (got 11)"),
        ("", "must contain a non-whitespace character"),
        (" \t\n", "must contain a non-whitespace character"),
    ],
)
def test_query_text(text: str, description: str) -> None:
    assert violations(SearchRequestSpec(text), max_query_chars=10) == [("query", description)]
    assert resolve(SearchRequestSpec("x" * 10), max_query_chars=10).text == "x" * 10


@pytest.mark.parametrize("top_k", [6, -1])
def test_top_k_outside_the_limit(top_k: int) -> None:
    assert violations(SearchRequestSpec("flow", top_k=top_k), max_top_k=5) == [
        ("top_k", f"must be in [0, 5] (got {top_k})")
    ]
    assert resolve(SearchRequestSpec("flow", top_k=5), max_top_k=5).top_k == 5


def test_a_default_top_k_over_the_limit_is_refused_as_the_callers_zero() -> None:
    # What settings validation prevents at start-up: a bad default reads as a caller's error.
    with pytest.raises(InvalidArgumentError, match=r"top_k: must be in \[0, 5\] \(got 0\)"):
        resolve_query(SearchRequestSpec("flow"), QueryDefaults(top_k=6), Limits(max_top_k=5))


def fusion(**values: Any) -> SearchRequestSpec:
    return SearchRequestSpec("flow", fusion=FusionOptions(**values))


def prf(**values: Any) -> SearchRequestSpec:
    return SearchRequestSpec("flow", prf=PrfOptions(**values))


@pytest.mark.parametrize(
    ("spec", "limits", "path", "description"),
    [
        (fusion(alpha=1.5), {}, "fusion.alpha", "must be a finite number in [0, 1] (got 1.5)"),
        (fusion(alpha=-0.1), {}, "fusion.alpha", "must be a finite number in [0, 1] (got -0.1)"),
        (fusion(alpha=math.nan), {}, "fusion.alpha", "must be a finite number in [0, 1] (got nan)"),
        (fusion(rrf_k=0), {}, "fusion.rrf_k", "must be in [1, 10000] (got 0)"),
        (fusion(rrf_k=31), {"max_rrf_k": 30}, "fusion.rrf_k", "must be in [1, 30] (got 31)"),
        (
            fusion(rrf_sparse_weight=-1.0),
            {},
            "fusion.rrf_sparse_weight",
            "must be a finite number >= 0 (got -1.0)",
        ),
        (
            fusion(rrf_dense_weight=math.inf),
            {},
            "fusion.rrf_dense_weight",
            "must be a finite number >= 0 (got inf)",
        ),
        (
            fusion(method=FusionMethod.RRF, rrf_sparse_weight=0.0, rrf_dense_weight=0.0),
            {},
            "fusion.rrf_sparse_weight",
            "rrf_sparse_weight and rrf_dense_weight cannot both be 0 with RRF",
        ),
        (fusion(sparse_depth=0), {}, "fusion.sparse_depth", "must be in [1, 1000] (got 0)"),
        (
            fusion(sparse_depth=20, dense_depth=21),
            {"max_depth": 20},
            "fusion.dense_depth",
            "must be in [1, 20] (got 21)",
        ),
        (prf(fb_docs=0), {}, "prf.fb_docs", "must be in [1, 100] (got 0)"),
        (prf(fb_docs=11), {"max_fb_docs": 10}, "prf.fb_docs", "must be in [1, 10] (got 11)"),
        (prf(fb_terms=1001), {}, "prf.fb_terms", "must be in [1, 1000] (got 1001)"),
        (
            prf(vector_depth=7),
            {"max_vector_prf_depth": 6},
            "prf.vector_depth",
            "must be in [1, 6] (got 7)",
        ),
        (
            prf(original_query_weight=2.0),
            {},
            "prf.original_query_weight",
            "must be a finite number in [0, 1] (got 2.0)",
        ),
        (
            prf(rocchio_alpha=-0.5),
            {},
            "prf.rocchio_alpha",
            "must be a finite number >= 0 (got -0.5)",
        ),
        (
            prf(rocchio_beta=math.nan),
            {},
            "prf.rocchio_beta",
            "must be a finite number >= 0 (got nan)",
        ),
        (
            prf(rocchio_alpha=0.0, rocchio_beta=0.0),
            {},
            "prf.rocchio_alpha",
            "rocchio_alpha and rocchio_beta cannot both be 0",
        ),
    ],
)
def test_each_limit_names_its_field(
    spec: SearchRequestSpec, limits: dict[str, int], path: str, description: str
) -> None:
    assert violations(spec, **limits) == [(path, description)]
    assert violations(spec, "requests[2].", **limits) == [(f"requests[2].{path}", description)]


def test_a_value_at_each_limit_is_accepted() -> None:
    spec = SearchRequestSpec(
        "flow",
        top_k=3,
        fusion=FusionOptions(alpha=1.0, rrf_k=4, sparse_depth=5, dense_depth=5),
        prf=PrfOptions(fb_docs=6, fb_terms=7, vector_depth=8, original_query_weight=0.0),
    )
    query = resolve(
        spec,
        max_top_k=3,
        max_rrf_k=4,
        max_depth=5,
        max_fb_docs=6,
        max_fb_terms=7,
        max_vector_prf_depth=8,
    )
    assert (query.top_k, query.fusion.rrf_k, query.prf.vector_depth) == (3, 4, 8)


def test_unrecognized_choices_are_reported_where_they_were_sent() -> None:
    spec = SearchRequestSpec(
        "flow",
        mode=Unrecognized("mode problem"),
        fusion=FusionOptions(
            method=Unrecognized("method problem"), normalization=Unrecognized("norm problem")
        ),
        prf=PrfOptions(
            vector_method=Unrecognized("vector problem"), hybrid_stage=Unrecognized("stage")
        ),
        return_fields=(None, StoredField.TEXT, Unrecognized("field problem")),
    )
    assert violations(spec) == [
        ("mode", "mode problem"),
        ("fusion.method", "method problem"),
        ("fusion.normalization", "norm problem"),
        ("prf.vector_method", "vector problem"),
        ("prf.hybrid_stage", "stage"),
        ("return_fields[2]", "field problem"),
    ]


def test_every_violation_is_reported_at_once_in_request_order() -> None:
    spec = SearchRequestSpec(
        " ",
        top_k=2000,
        fusion=FusionOptions(alpha=2.0, sparse_depth=0),
        prf=PrfOptions(fb_docs=0),
        return_fields=(Unrecognized("no such field"),),
    )
    assert [path for path, _ in violations(spec, "requests[0].")] == [
        "requests[0].query",
        "requests[0].top_k",
        "requests[0].fusion.alpha",
        "requests[0].fusion.sparse_depth",
        "requests[0].prf.fb_docs",
        "requests[0].return_fields[0]",
    ]


def test_a_batch_resolves_in_order() -> None:
    queries = resolve_batch(
        [SearchRequestSpec("one"), SearchRequestSpec("two", top_k=3)], DEFAULTS, LIMITS
    )
    assert [(q.text, q.top_k) for q in queries] == [("one", 10), ("two", 3)]


@pytest.mark.parametrize("count", [0, 4])
def test_a_batch_outside_its_size_limit(count: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        resolve_batch([SearchRequestSpec("q")] * count, DEFAULTS, Limits(max_batch_queries=3))
    assert [(v.field, v.description) for v in info.value.violations] == [
        ("requests", f"must hold 1 to 3 requests (got {count})")
    ]


def test_a_batch_reports_every_bad_request_by_position() -> None:
    specs = [SearchRequestSpec("ok"), SearchRequestSpec(""), fusion(alpha=3.0)]
    with pytest.raises(InvalidArgumentError) as info:
        resolve_batch(specs, DEFAULTS, LIMITS)
    assert [v.field for v in info.value.violations] == [
        "requests[1].query",
        "requests[2].fusion.alpha",
    ]


def test_zero_rrf_weights_are_fine_when_interpolating() -> None:
    spec = fusion(method=FusionMethod.INTERPOLATION, rrf_sparse_weight=0.0, rrf_dense_weight=0.0)
    assert resolve_query(spec, QueryDefaults(), Limits()).fusion.rrf_dense_weight == 0.0


def test_offset_defaults_to_zero_and_highlights_to_off() -> None:
    query = resolve(SearchRequestSpec("flow"))
    assert (query.offset, query.highlight) == (0, None)


def test_a_page_within_every_depth_is_accepted() -> None:
    spec = SearchRequestSpec("flow", top_k=10, offset=990)
    assert resolve(spec).offset == 990
    sparse_only = SearchRequestSpec(
        "flow",
        top_k=10,
        offset=40,
        mode=RetrievalMode.SPARSE,
        fusion=FusionOptions(sparse_depth=50, dense_depth=5),
    )
    assert resolve(sparse_only).offset == 40  # the dense depth is not the sparse arm's bound


@pytest.mark.parametrize(
    ("spec", "limits", "description"),
    [
        (SearchRequestSpec("flow", offset=-1), {}, "must be in [0, 10000] (got -1)"),
        (SearchRequestSpec("flow", offset=21), {"max_offset": 20}, "must be in [0, 20] (got 21)"),
        (
            SearchRequestSpec("flow", offset=991),
            {},
            f"offset + top_k must be at most fusion.sparse_depth (1000, {RAISED}) (got 991 + 10)",
        ),
        (
            SearchRequestSpec("flow", offset=30, fusion=FusionOptions(dense_depth=35)),
            {},
            f"offset + top_k must be at most fusion.dense_depth (35, {RAISED}) (got 30 + 10)",
        ),
    ],
)
def test_offset_outside_its_bounds(
    spec: SearchRequestSpec, limits: dict[str, int], description: str
) -> None:
    assert violations(spec, **limits) == [("offset", description)]
    assert violations(spec, "requests[1].", **limits) == [("requests[1].offset", description)]


@pytest.mark.parametrize("mode", [RetrievalMode.SPARSE, RetrievalMode.DENSE])
def test_a_single_arm_page_is_bounded_by_max_offset_alone(mode: RetrievalMode) -> None:
    """A single-arm mode ranks its arm offset + top_k deep: the fusion depths (and so
    --max-depth, 1000) made every offset past 999 invalid, and --max-offset unreachable."""
    spec = SearchRequestSpec(
        "flow", top_k=1000, offset=10_000, mode=mode, fusion=FusionOptions(sparse_depth=5)
    )
    assert resolve(spec).offset == 10_000
    assert violations(dataclasses.replace(spec, offset=10_001)) == [
        ("offset", "must be in [0, 10000] (got 10001)")
    ]


def test_a_depth_raised_to_top_k_still_bounds_the_offset() -> None:
    # top_k 50 over a sparse_depth of 10 is served (the depth is raised to 50), so offset 0 is
    # fine as ever, and any offset runs past the 50 candidates.
    spec = SearchRequestSpec("flow", top_k=50, fusion=FusionOptions(sparse_depth=10))
    assert resolve(spec).fusion.sparse_depth == 50
    assert violations(dataclasses.replace(spec, offset=1)) == [
        (
            "offset",
            f"offset + top_k must be at most fusion.sparse_depth (50, {RAISED}) (got 1 + 50)",
        )
    ]


def test_highlight_max_chars_defaults_and_limits() -> None:
    on = HighlightOptions(enabled=True)
    assert resolve(SearchRequestSpec("flow", highlight=on)).highlight == HighlightSettings(200)
    for chars in (20, 2000):
        spec = SearchRequestSpec("flow", highlight=HighlightOptions(True, chars))
        assert resolve(spec).highlight == HighlightSettings(chars)
    for chars in (19, 2001):
        spec = SearchRequestSpec("flow", highlight=HighlightOptions(True, chars))
        assert violations(spec) == [("highlight.max_chars", f"must be in [20, 2000] (got {chars})")]
    # Not enabled: no highlights, whatever max_chars says.
    assert (
        resolve(SearchRequestSpec("flow", highlight=HighlightOptions(False, 5))).highlight is None
    )
