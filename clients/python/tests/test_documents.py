"""Batching documents into UpsertDocumentsRequest messages, without a server."""

from __future__ import annotations

import datetime
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

    doc = Document(
        "doc-7", "t", "x", metadata={"n": 1, "when": datetime.datetime.now(datetime.UTC)}
    )
    with pytest.raises(ValueError, match=r"document 'doc-7': metadata field 'when'.*datetime"):
        doc.to_proto()
