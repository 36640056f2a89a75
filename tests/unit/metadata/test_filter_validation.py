"""Every INVALID_ARGUMENT rule of a request's filter, with the field path it names."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hybridsearch.engine.request import (
    Limits,
    QueryDefaults,
    SearchRequestSpec,
    resolve_batch,
    resolve_query,
)
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.metadata import filter as flt
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Document, Query
from tests.fakes import HashEncoder, build_fake_index

SCHEMA = CollectionSchema(
    (
        MetadataField("tenant", MetadataType.KEYWORD),
        MetadataField("year", MetadataType.INTEGER),
        MetadataField("price", MetadataType.FLOAT),
        MetadataField("public", MetadataType.BOOLEAN),
        MetadataField("at", MetadataType.DATETIME),
    )
)
NOW = datetime(2020, 1, 1, tzinfo=UTC)


def _violations(filter_: flt.Filter, limits: Limits | None = None) -> list[tuple[str, str]]:
    spec = SearchRequestSpec("q", filter=filter_)
    with pytest.raises(InvalidArgumentError) as caught:
        resolve_query(spec, QueryDefaults(), limits or Limits())
    return [(v.field, v.description) for v in caught.value.violations]


def _nested(depth: int) -> flt.Filter:
    node = flt.Filter(must=(flt.Exists("year"),))
    for _ in range(depth - 1):
        node = flt.Filter(must=(node,))
    return node


@pytest.mark.parametrize(
    ("filter_", "path", "words"),
    [
        (flt.Filter(min_should_match=1), "filter.min_should_match", "needs should"),
        (
            flt.Filter(should=(flt.Exists("a"),), min_should_match=2),
            "filter.min_should_match",
            "at most the number of should",
        ),
        (flt.Filter(must=(flt.Missing("set one of x"),)), "filter.must[0]", "set one of"),
        (flt.Filter(must=(flt.Match("year", ()),)), "filter.must[0].match.any", "1 to 1024"),
        (
            flt.Filter(must=(flt.Match("year", (1,) * 1025),)),
            "filter.must[0].match.any",
            "1 to 1024",
        ),
        (
            flt.Filter(must=(flt.Match("year", (1, flt.Missing("unset"))),)),
            "filter.must[0].match.any[1]",
            "unset",
        ),
        (flt.Filter(must=(flt.Match("", (1,)),)), "filter.must[0].match.field", "must name"),
        (flt.Filter(must=(flt.Range("year"),)), "filter.must[0].range", "at least one"),
        (
            flt.Filter(must=(flt.Range("year", gt=1, gte=2),)),
            "filter.must[0].range.gte",
            "not both",
        ),
        (
            flt.Filter(must=(flt.Range("year", lt=1, lte=2),)),
            "filter.must[0].range.lte",
            "not both",
        ),
        (
            flt.Filter(must=(flt.Range("price", gte=float("nan")),)),
            "filter.must[0].range.gte",
            "finite",
        ),
        (flt.Filter(must=(flt.HasId(()),)), "filter.must[0].has_id.ids", "1 to 10000"),
        (flt.Filter(must=(flt.IsNull(""),)), "filter.must[0].is_null.field", "must name"),
        (flt.Filter(must=(flt.Exists(""),)), "filter.must[0].exists.field", "must name"),
        (
            flt.Filter(must_not=(flt.Exists("a"), flt.Filter(should=(flt.Exists(""),)))),
            "filter.must_not[1].filter.should[0].exists.field",
            "must name",
        ),
        (_nested(9), "filter" + ".must[0].filter" * 8, "at most 8 levels"),
        (flt.Filter(must=(flt.Exists("a"),) * 65), "filter", "at most 64 conditions"),
    ],
)
def test_shape_violations_name_the_field_path(filter_: flt.Filter, path: str, words: str) -> None:
    violations = _violations(filter_)
    assert any(p == path and words in d for p, d in violations), violations


def test_limits_are_settings_and_the_limit_itself_passes() -> None:
    limits = Limits(max_filter_depth=2, max_filter_conditions=3)
    assert _violations(_nested(3), limits)[0][0] == "filter.must[0].filter.must[0].filter"
    spec = SearchRequestSpec("q", filter=_nested(8))
    assert resolve_query(spec, QueryDefaults(), Limits()).filter == _nested(8)
    spec = SearchRequestSpec("q", filter=flt.Filter(must=(flt.Exists("a"),) * 64))
    resolve_query(spec, QueryDefaults(), Limits())


def test_batch_violations_are_prefixed_with_the_request() -> None:
    bad = SearchRequestSpec("q", filter=flt.Filter(min_should_match=1))
    with pytest.raises(InvalidArgumentError) as caught:
        resolve_batch([SearchRequestSpec("q"), bad], QueryDefaults(), Limits())
    assert caught.value.violations[0].field == "requests[1].filter.min_should_match"


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> HybridSearcher:
    docs = [Document("d1", "", "alpha", {"tenant": "a", "year": 2020})]
    path = build_fake_index(tmp_path_factory.mktemp("v") / "idx", docs, schema=SCHEMA)
    return HybridSearcher(open_index(path), HashEncoder())


@pytest.mark.parametrize(
    ("condition", "path", "words"),
    [
        (flt.Exists("nope"), "filter.must[0].exists.field", "'nope' is not a declared"),
        (flt.IsNull("nope"), "filter.must[0].is_null.field", "not a declared"),
        (flt.Match("nope", ("a",)), "filter.must[0].match.field", "not a declared"),
        (flt.Range("nope", gt=1), "filter.must[0].range.field", "not a declared"),
        (flt.Match("year", ("2020",)), "filter.must[0].match.any[0]", "give an integer"),
        (flt.Match("year", (True,)), "filter.must[0].match.any[0]", "give an integer"),
        (flt.Match("public", (1,)), "filter.must[0].match.any[0]", "give a boolean"),
        (flt.Match("tenant", (1,)), "filter.must[0].match.any[0]", "give a keyword"),
        (flt.Match("price", (1,)), "filter.must[0].match.field", "use range"),
        (flt.Match("at", (1,)), "filter.must[0].match.field", "use range"),
        (flt.Range("tenant", gt=1), "filter.must[0].range.field", "use match"),
        (flt.Range("public", gt=1), "filter.must[0].range.field", "use match"),
        (flt.Range("year", gte=NOW), "filter.must[0].range.gte", "an integer or a number"),
        (flt.Range("at", lt=5), "filter.must[0].range.lt", "give a datetime"),
    ],
)
def test_schema_violations_name_the_field_path(
    searcher: HybridSearcher, condition: flt.Condition, path: str, words: str
) -> None:
    query = Query("alpha", filter=flt.Filter(must=(condition,)))
    with pytest.raises(InvalidArgumentError) as caught:
        searcher.search(query)
    [violation] = caught.value.violations
    assert violation.field == path and words in violation.description
    with pytest.raises(InvalidArgumentError) as caught:
        searcher.search_batch([Query("alpha"), query])
    assert caught.value.violations[0].field == "requests[1]." + path


def test_a_filter_on_an_index_without_a_schema_is_invalid_but_has_id_works(
    tmp_path: Path,
) -> None:
    path = build_fake_index(tmp_path / "idx", [Document("d1", "", "alpha", {"year": 1})])
    plain = HybridSearcher(open_index(path), HashEncoder())
    with pytest.raises(InvalidArgumentError) as caught:
        plain.search(Query("alpha", filter=flt.Filter(must=(flt.Exists("year"),))))
    assert "declared: none" in caught.value.violations[0].description
    hits = plain.search(Query("alpha", filter=flt.Filter(must=(flt.HasId(("d1",)),)))).hits
    assert [h.id for h in hits] == ["d1"]


def test_an_undeclared_field_name_is_echoed_cut_short(searcher: HybridSearcher) -> None:
    name = "n" * 100_000
    query = Query("alpha", filter=flt.Filter(must=(flt.Exists(name),)))
    with pytest.raises(InvalidArgumentError) as caught:
        searcher.search(query)
    [violation] = caught.value.violations
    assert "(100000 characters) is not a declared" in violation.description
    assert len(str(caught.value)) < 300


def test_thousands_of_bad_values_are_named_twenty_and_counted() -> None:
    wrong = flt.Filter(must=(flt.Match("year", (flt.Missing("unset"),) * 1024),))
    with pytest.raises(InvalidArgumentError) as caught:
        resolve_query(SearchRequestSpec("q", filter=wrong), QueryDefaults(), Limits())
    error = caught.value
    assert [v.field for v in error.violations] == [
        f"filter.must[0].match.any[{i}]" for i in range(20)
    ]
    assert error.omitted == 1004
    assert str(error).endswith("; and 1004 more invalid field(s) not listed")
    # Over the values' limit the values go unchecked: one violation.
    over = flt.Filter(must=(flt.Match("year", (flt.Missing("unset"),) * 20_000),))
    assert len(_violations(over)) == 1


def test_a_batch_names_twenty_violations_and_counts_the_rest() -> None:
    bad = SearchRequestSpec("", top_k=-1, filter=flt.Filter(min_should_match=1))
    with pytest.raises(InvalidArgumentError) as caught:
        resolve_batch([bad] * 256, QueryDefaults(), Limits())
    error = caught.value
    # At most twenty, fewer when their text passes MOST_VIOLATION_BYTES (here 16 fit).
    assert 10 <= len(error.violations) <= 20
    assert error.violations[0].field == "requests[0].query"
    assert error.omitted == 256 * 3 - len(error.violations)
    # The count survives the pickling that carries a shard's error to the front.
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.violations, copy.omitted, str(copy)) == (
        error.violations,
        error.omitted,
        str(error),
    )


def test_an_undeclared_field_lists_a_few_declared_ones(
    searcher: HybridSearcher, tmp_path: Path
) -> None:
    query = Query("alpha", filter=flt.Filter(must=(flt.Exists("nope"),)))
    with pytest.raises(InvalidArgumentError) as caught:
        searcher.search(query)
    assert "(declared: tenant, year, price, public, at)" in caught.value.violations[0].description
    # A schema may declare 64 fields of 64 characters: listing them all made one violation
    # of 4 KB, sent twice in the trailers, past what gRPC's C-core clients accept.
    wide = CollectionSchema(
        tuple(MetadataField(f"{i:02d}" + "f" * 62, MetadataType.KEYWORD) for i in range(64))
    )
    path = build_fake_index(tmp_path / "idx", [Document("d1", "", "alpha")], schema=wide)
    with pytest.raises(InvalidArgumentError) as caught:
        HybridSearcher(open_index(path), HashEncoder()).search(query)
    [violation] = caught.value.violations
    assert violation.description.startswith("'nope' is not a declared metadata field (declared: 00")
    assert violation.description.endswith("and 56 more; GetCollection lists them all)")
    assert len(violation.description) < 700
