"""The filter builder without a server: the messages it makes."""

from __future__ import annotations

import datetime as dt

import pytest

from hybridsearch_client import build_search_request, filter_pb, pb
from hybridsearch_client import filters as f


def test_operators_make_one_flat_filter() -> None:
    flt = f.match("journal", "nature", "cell") & f.range("year", gte=2015) & ~f.exists("erratum")
    expected = filter_pb.Filter(
        must=[
            filter_pb.Condition(
                match=filter_pb.Match(
                    field="journal",
                    any=[
                        filter_pb.MatchValue(keyword="nature"),
                        filter_pb.MatchValue(keyword="cell"),
                    ],
                )
            ),
            filter_pb.Condition(
                range=filter_pb.Range(field="year", gte=filter_pb.RangeBound(integer=2015))
            ),
        ],
        must_not=[filter_pb.Condition(exists=filter_pb.Exists(field="erratum"))],
    )
    assert flt.to_filter() == expected


def test_or_flattens_and_nests_under_and() -> None:
    either = f.match("open_access", True) | f.range("impact", gt=5.0) | f.is_null("erratum")
    flt = (either & f.has_id("a", "b")).to_filter()
    assert len(flt.must) == 2
    nested = flt.must[0].filter
    assert [c.WhichOneof("condition") for c in nested.should] == ["match", "range", "is_null"]
    assert nested.should[0].match.any[0].WhichOneof("value") == "boolean"
    assert nested.should[1].range.gt.number == 5.0
    assert list(flt.must[1].has_id.ids) == ["a", "b"]


def test_any_of_with_minimum_stays_nested() -> None:
    two = f.any_of(
        f.match("topics", "oncology"),
        f.match("topics", "genetics"),
        f.exists("x"),
        min_should_match=2,
    )
    flt = (two | f.match("year", 2020)).to_filter()
    assert flt.min_should_match == 0
    assert flt.should[0].filter.min_should_match == 2


def test_where_and_values() -> None:
    when = dt.datetime(2020, 1, 31, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    flt = f.where(
        must=[f.range("published", lt=when)],
        should=[f.match("year", 2019, 2020)],
        min_should_match=1,
        must_not=[f.match("erratum", "major")],
    ).to_filter()
    bound = flt.must[0].range.lt.datetime
    assert bound.ToDatetime(tzinfo=dt.UTC) == when
    assert [v.integer for v in flt.should[0].match.any] == [2019, 2020]
    assert flt.min_should_match == 1
    assert flt.must_not[0].match.any[0].keyword == "major"


def test_single_condition_becomes_one_must() -> None:
    assert f.exists("x").to_filter() == filter_pb.Filter(
        must=[filter_pb.Condition(exists=filter_pb.Exists(field="x"))]
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: f.match("x"),
        lambda: f.range("x"),
        f.has_id,
        lambda: f.range("x", gte=dt.datetime(2020, 1, 1)),  # naive
        lambda: f.any_of(f.exists("x"), min_should_match=-1),
    ],
)
def test_bad_builder_input_raises_value_error(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_bad_value_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        f.match("x", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        f.range("x", gte=True)
    with pytest.raises(TypeError):
        f.has_id(["a", "b"])  # type: ignore[arg-type]


def test_search_request_options() -> None:
    raw = filter_pb.Filter(must_not=[filter_pb.Condition(is_null=filter_pb.IsNull(field="year"))])
    request = build_search_request(
        "q", collection="papers", filter=raw, offset=20, highlight_max_chars=80
    )
    assert request.collection == "papers"
    assert request.filter == raw
    assert request.offset == 20
    assert request.highlight == pb.HighlightOptions(enabled=True, max_chars=80)
    plain = build_search_request("q", highlight=True)
    assert plain.highlight.enabled
    assert not plain.highlight.HasField("max_chars")
    assert not build_search_request("q").HasField("highlight")
    assert not build_search_request("q").HasField("filter")
