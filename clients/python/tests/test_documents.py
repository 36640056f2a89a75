"""Batching documents into UpsertDocumentsRequest messages, without a server."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterable

import pytest

from hybridsearch_client import Document, index_pb
from hybridsearch_client._documents import UpsertBatcher, UpsertItem


def _batches(items: Iterable[UpsertItem], **options: int) -> list[list[str]]:
    batcher = UpsertBatcher(**options)
    requests = [r for item in items for r in batcher.add(item)]
    requests += batcher.flush()
    return [[d.id for d in r.documents] for r in requests]


def test_batches_by_count() -> None:
    docs = [Document(str(i)) for i in range(5)]
    assert _batches(docs, batch_size=2) == [["0", "1"], ["2", "3"], ["4"]]


def test_batches_by_bytes_and_sends_a_large_document_alone() -> None:
    docs = [Document("a", text="x" * 60), Document("b", text="y" * 60), Document("c")]
    assert _batches(docs, batch_size=10, max_batch_bytes=100) == [["a"], ["b", "c"]]
    big = [Document("big", text="z" * 500), Document("d")]
    assert _batches(big, max_batch_bytes=100) == [["big"], ["d"]]


def test_ready_request_flushes_pending_documents_first() -> None:
    ready = index_pb.UpsertDocumentsRequest(documents=[index_pb.Document(id="r")])
    items: list[UpsertItem] = [Document("a"), ready, index_pb.Document(id="b")]
    assert _batches(items) == [["a"], ["r"], ["b"]]


def test_document_round_trips_through_the_message() -> None:
    doc = Document("id", title="t", text="x", metadata={"k": [1.5, "v"], "n": {"m": True}})
    assert Document.from_proto(doc.to_proto()) == doc
    assert Document.from_proto(index_pb.Document(id="bare")) == Document("bare")


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"max_batch_bytes": 0}])
def test_bad_batch_settings(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UpsertBatcher(**options)


def test_rejects_other_items() -> None:
    with pytest.raises(TypeError):
        list(UpsertBatcher().add({"id": "x"}))  # type: ignore[arg-type]


def test_non_json_metadata_names_the_document_and_field() -> None:
    doc = Document("doc-7", "t", "x", metadata={"n": 1, "price": decimal.Decimal("1.5")})
    with pytest.raises(ValueError, match=r"document 'doc-7': metadata field 'price'.*Decimal"):
        doc.to_proto()


def test_aware_datetimes_in_metadata_become_utc_rfc3339_at_any_depth() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    doc = Document(
        "d",
        metadata={
            "published": datetime.datetime(2020, 1, 31, 14, 0, tzinfo=plus_two),
            "events": [{"at": datetime.datetime(2021, 5, 1, 8, 30, 0, 250000, datetime.UTC)}],
            "n": 1,
        },
    )
    assert Document.from_proto(doc.to_proto()).metadata == {
        "published": "2020-01-31T12:00:00Z",
        "events": [{"at": "2021-05-01T08:30:00.250Z"}],
        "n": 1,
    }
    assert doc.metadata["n"] == 1  # the caller's mapping is left as it was
    assert isinstance(doc.metadata["published"], datetime.datetime)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime.datetime(2020, 1, 31, 12), "has no time zone"),
        (datetime.date(2020, 1, 31), "a date without a time"),
    ],
)
def test_a_value_that_is_not_an_instant_raises_naming_document_and_path(
    value: datetime.date, reason: str
) -> None:
    doc = Document("doc-9", metadata={"events": [{"at": 1}, {"at": value}]})
    with pytest.raises(
        ValueError, match=rf"document 'doc-9': metadata field 'events\[1\]\.at'.*{reason}"
    ):
        doc.to_proto()
