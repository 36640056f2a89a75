"""Document and delete checks against the ingest limits."""

from __future__ import annotations

import pytest

from hybridsearch.engine.document_rules import (
    IngestLimits,
    check_delete_count,
    check_ids,
    document_problem,
)
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.types import Document

LIMITS = IngestLimits(max_document_chars=10, max_id_bytes=8, max_delete_ids=3)


def test_default_limits() -> None:
    assert IngestLimits() == IngestLimits(
        max_document_chars=1_000_000, max_id_bytes=512, max_delete_ids=10_000
    )


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (Document(" ", "", "x"), "empty id"),
        (Document("x" * 9, "", "x"), "id longer than 8 bytes"),
        (Document("é" * 5, "", "x"), "id longer than 8 bytes"),  # 10 bytes in UTF-8
        (Document("a\x00b", "", "x"), "NUL"),
        (Document("big", "t" * 6, "x" * 5), "title + text is 11 characters; at most 10"),
    ],
)
def test_document_problems_name_the_reason(doc: Document, reason: str) -> None:
    problem = document_problem(doc, LIMITS)
    assert problem is not None and reason in problem


def test_a_document_at_every_limit_has_no_problem() -> None:
    assert document_problem(Document("x" * 8, "t" * 5, "x" * 5), LIMITS) is None


@pytest.mark.parametrize("count", [0, 4])
def test_delete_count_outside_the_limit(count: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_delete_count(count, LIMITS)
    assert [(v.field, v.description) for v in info.value.violations] == [
        ("ids", f"must hold 1 to 3 ids (got {count})")
    ]


def test_delete_count_within_the_limit() -> None:
    check_delete_count(1, LIMITS)
    check_delete_count(3, LIMITS)


def test_check_ids_names_each_bad_id_and_caps_the_list() -> None:
    limits = IngestLimits(max_id_bytes=4)
    check_ids(["ok", "fine"], limits)
    with pytest.raises(InvalidArgumentError) as info:
        check_ids(["ok", "toolong", "", *["x\x00"] * 30], limits)
    fields = [v.field for v in info.value.violations]
    assert fields[:3] == ["ids[1]", "ids[2]", "ids[3]"]
    assert len(fields) == 20
    assert info.value.violations[0].description == "id longer than 4 bytes"
