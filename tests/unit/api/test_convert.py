"""SearchRequest ↔ the domain's request description: unset stays unset, unknown is reported."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import json_format

from hybridsearch.api.convert import (
    document_from_proto,
    document_to_proto,
    request_from_proto,
    request_to_proto,
)
from hybridsearch.config import ServerSettings
from hybridsearch.engine.request import (
    FusionOptions,
    HighlightOptions,
    PrfOptions,
    SearchRequestSpec,
    Unrecognized,
    resolve_query,
)
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.types import (
    FusionMethod,
    Normalization,
    PrfStage,
    RetrievalMode,
    StoredField,
    VectorPrfMethod,
)
from hybridsearch.v1 import index_pb2
from hybridsearch.v1 import search_pb2 as pb

FULL = pb.SearchRequest(
    query="flow",
    top_k=5,
    mode=pb.RETRIEVAL_MODE_DENSE,
    fusion=pb.FusionOptions(
        method=pb.FUSION_METHOD_RRF,
        alpha=0.25,
        normalization=pb.SCORE_NORMALIZATION_NONE,
        rrf_k=20,
        rrf_sparse_weight=0.5,
        rrf_dense_weight=2.0,
        sparse_depth=30,
        dense_depth=40,
    ),
    prf=pb.PrfOptions(
        rm3=True,
        fb_docs=4,
        fb_terms=6,
        original_query_weight=0.7,
        vector_method=pb.VECTOR_PRF_METHOD_ROCCHIO,
        vector_depth=8,
        rocchio_alpha=0.1,
        rocchio_beta=0.9,
        hybrid_stage=pb.PRF_STAGE_BOTH,
    ),
    explain=True,
    return_fields=[pb.STORED_FIELD_TITLE, pb.STORED_FIELD_METADATA],
)
FULL_SPEC = SearchRequestSpec(
    text="flow",
    top_k=5,
    mode=RetrievalMode.DENSE,
    fusion=FusionOptions(FusionMethod.RRF, 0.25, Normalization.NONE, 20, 0.5, 2.0, 30, 40),
    prf=PrfOptions(True, VectorPrfMethod.ROCCHIO, 4, 6, 0.7, 8, 0.1, 0.9, PrfStage.BOTH),
    explain=True,
    return_fields=(StoredField.TITLE, StoredField.METADATA),
)


def test_every_field_maps_both_ways() -> None:
    assert request_from_proto(FULL) == FULL_SPEC
    assert request_to_proto(FULL_SPEC) == FULL


def test_unset_fields_map_to_none_and_back_to_unset() -> None:
    empty = pb.SearchRequest(query="flow")
    spec = request_from_proto(empty)
    assert spec == SearchRequestSpec("flow")
    assert request_to_proto(spec) == empty


def test_zero_values_that_were_set_are_kept() -> None:
    # `optional` fields: an explicit 0 is the caller's value, not the default.
    spec = request_from_proto(pb.SearchRequest(query="q", fusion=pb.FusionOptions(alpha=0.0)))
    assert spec.fusion.alpha == 0.0


def test_unknown_enum_values_are_unrecognized_with_the_known_names() -> None:
    message = pb.SearchRequest(
        query="flow",
        mode=9,  # type: ignore[arg-type]
        fusion=pb.FusionOptions(method=7, normalization=8),  # type: ignore[arg-type]
        prf=pb.PrfOptions(vector_method=5, hybrid_stage=6),  # type: ignore[arg-type]
        return_fields=[0, 11],  # type: ignore[list-item]
    )
    spec = request_from_proto(message)
    assert spec.mode == Unrecognized(
        "unknown value 9; use RETRIEVAL_MODE_HYBRID, RETRIEVAL_MODE_DENSE, RETRIEVAL_MODE_SPARSE"
    )
    assert spec.fusion.method == Unrecognized(
        "unknown value 7; use FUSION_METHOD_INTERPOLATION, FUSION_METHOD_RRF, "
        "FUSION_METHOD_ADAPTIVE"
    )
    assert spec.return_fields == (
        None,
        Unrecognized(
            "unknown value 11; use STORED_FIELD_TITLE, STORED_FIELD_TEXT, STORED_FIELD_METADATA"
        ),
    )
    settings = ServerSettings()
    with pytest.raises(InvalidArgumentError) as info:
        resolve_query(spec, settings.query_defaults, settings.request_limits)
    assert [v.field for v in info.value.violations] == [
        "mode",
        "fusion.method",
        "fusion.normalization",
        "prf.vector_method",
        "prf.hybrid_stage",
        "return_fields[1]",  # the index the caller sent (entry 0 was unspecified)
    ]


def test_an_unrecognized_choice_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="unrecognized"):
        request_to_proto(SearchRequestSpec("flow", mode=Unrecognized("?")))


def test_offset_and_highlight_round_trip() -> None:
    message = pb.SearchRequest(
        query="flow", offset=20, highlight=pb.HighlightOptions(enabled=True, max_chars=80)
    )
    spec = request_from_proto(message)
    assert (spec.offset, spec.highlight) == (20, HighlightOptions(enabled=True, max_chars=80))
    assert request_to_proto(spec) == message
    unset = request_from_proto(
        pb.SearchRequest(query="flow", highlight=pb.HighlightOptions(enabled=True))
    )
    assert unset.highlight == HighlightOptions(enabled=True, max_chars=None)


@pytest.mark.parametrize(
    "timestamp", [{"seconds": 10**12}, {"seconds": -(10**12)}, {"seconds": 0, "nanos": -1}]
)
def test_a_timestamp_bound_out_of_range_is_invalid_with_its_path(
    timestamp: dict[str, int],
) -> None:
    request = pb.SearchRequest(query="flow")
    condition = request.filter.must.add()
    condition.range.field = "at"
    condition.range.gte.datetime.seconds = timestamp["seconds"]
    condition.range.gte.datetime.nanos = timestamp.get("nanos", 0)
    with pytest.raises(InvalidArgumentError) as caught:
        settings = ServerSettings()
        resolve_query(request_from_proto(request), settings.query_defaults, settings.request_limits)
    [violation] = caught.value.violations
    assert violation.field == "filter.must[0].range.gte"
    assert "0001-01-01 to 9999-12-31" in violation.description


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_document_with_a_non_finite_metadata_number_is_invalid(number: float) -> None:
    message = index_pb2.Document(id="d", text="t")
    message.metadata.update({"ok": 1, "nested": {"list": [1, number]}})
    with pytest.raises(InvalidArgumentError) as caught:
        document_from_proto(message)
    assert (
        str(caught.value)
        == "metadata: numbers must be finite (NaN and infinities are not accepted)"
    )


def test_a_stored_integer_beyond_a_double_is_returned_as_its_digits() -> None:
    huge = 10**400
    stored = StoredDoc("d", 0, "", "t", {"n": huge, "deep": [{"m": -huge}], "small": 3})
    message = document_to_proto(stored)
    assert json_format.MessageToDict(message.metadata) == {
        "n": str(huge),
        "deep": [{"m": str(-huge)}],
        "small": 3.0,
    }


@pytest.mark.parametrize(
    ("operator", "microsecond"), [("gte", 1), ("lt", 1), ("gt", 0), ("lte", 0)]
)
def test_a_timestamp_bound_between_two_microseconds_keeps_its_answer(
    operator: str, microsecond: int
) -> None:
    """Stored datetimes hold microseconds: a bound 1 ns past 12:00:00 is 12:00:00.000001 for
    gte and lt (12:00:00 is not >= it, and is < it) and 12:00:00 for gt and lte."""
    request = pb.SearchRequest(query="flow")
    condition = request.filter.must.add()
    condition.range.field = "at"
    bound = getattr(condition.range, operator)
    bound.datetime.seconds = 1578052800  # 2020-01-03T12:00:00Z
    bound.datetime.nanos = 1
    spec = request_from_proto(request)
    assert spec.filter is not None
    [range_] = spec.filter.must
    assert getattr(range_, operator) == datetime(2020, 1, 3, 12, 0, 0, microsecond, tzinfo=UTC)
