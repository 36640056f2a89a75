"""`hybridsearch ingest` splits a corpus into messages by count and by bytes."""

from __future__ import annotations

from hybridsearch.cli.ingest import document_to_proto, upsert_requests
from hybridsearch.types import Document

DOCS = [Document(f"d{i}", "", "x" * 100) for i in range(6)]


def _sizes(**kwargs: int) -> list[int]:
    batch_size = kwargs.pop("batch_size")
    return [len(r.documents) for r in upsert_requests(DOCS, batch_size, **kwargs)]


def test_batches_by_count() -> None:
    assert _sizes(batch_size=4) == [4, 2]


def test_batches_by_bytes() -> None:
    one = document_to_proto(DOCS[0]).ByteSize()
    assert _sizes(batch_size=64, max_batch_bytes=2 * one) == [2, 2, 2]
    # a document larger than the bound still travels, alone
    assert _sizes(batch_size=64, max_batch_bytes=1) == [1] * 6
