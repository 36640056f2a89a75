"""`hybridsearch ingest` batching: UpsertDocuments requests cut by document count and bytes."""

from __future__ import annotations

from collections.abc import Iterator

from hybridsearch.cli.ingest import DEFAULT_MAX_BATCH_BYTES as MAX_BATCH_BYTES
from hybridsearch.cli.ingest import document_to_proto, upsert_requests
from hybridsearch.types import Document


def docs(count: int, text_chars: int = 10) -> list[Document]:
    return [Document(f"d{i}", "title", "x" * text_chars) for i in range(count)]


def ids_of(requests: Iterator[object]) -> list[list[str]]:
    return [[d.id for d in r.documents] for r in requests]  # type: ignore[attr-defined]


def test_batches_hold_at_most_batch_size_documents_in_corpus_order() -> None:
    batches = ids_of(upsert_requests(docs(7), batch_size=3))
    assert batches == [["d0", "d1", "d2"], ["d3", "d4", "d5"], ["d6"]]


def test_an_exact_multiple_leaves_no_empty_batch() -> None:
    assert [len(b) for b in ids_of(upsert_requests(docs(6), batch_size=3))] == [3, 3]


def test_no_documents_no_requests() -> None:
    assert list(upsert_requests([], batch_size=3)) == []


def test_batches_are_cut_before_they_pass_max_batch_bytes() -> None:
    big = MAX_BATCH_BYTES * 2 // 5  # two fit in a batch, a third would not
    requests = list(upsert_requests(docs(5, big), batch_size=100))
    assert [len(r.documents) for r in requests] == [2, 2, 1]
    assert all(r.ByteSize() <= MAX_BATCH_BYTES + 64 for r in requests)


def test_a_document_over_max_batch_bytes_goes_alone() -> None:
    corpus = [*docs(1), Document("huge", "", "y" * (MAX_BATCH_BYTES + 1)), *docs(1)]
    assert ids_of(upsert_requests(corpus, batch_size=100)) == [["d0"], ["huge"], ["d0"]]


def test_on_batch_reports_each_sent_batch_size() -> None:
    sizes: list[int] = []
    for _ in upsert_requests(docs(5), batch_size=2, on_batch=sizes.append):
        pass
    assert sizes == [2, 2, 1]


def test_the_corpus_is_read_lazily() -> None:
    read: list[str] = []

    def corpus() -> Iterator[Document]:
        for doc in docs(100):
            read.append(doc.id)
            yield doc

    requests = upsert_requests(corpus(), batch_size=10)
    first = next(requests)
    assert len(first.documents) == 10
    assert len(read) == 11  # the batch, and the document that did not fit


def test_documents_keep_their_fields_and_metadata() -> None:
    doc = Document("d", "Title", "Text", {"year": 1962, "tags": ["a"]})
    message = document_to_proto(doc)
    assert (message.id, message.title, message.text) == ("d", "Title", "Text")
    assert dict(message.metadata) == {"year": 1962, "tags": ["a"]}
    assert not document_to_proto(Document("e")).HasField("metadata")


def test_ingest_max_batch_bytes_sets_the_bound() -> None:
    docs = [Document(f"d{i}", "", "x" * 100) for i in range(6)]
    one = document_to_proto(docs[0]).ByteSize()
    sizes = [len(r.documents) for r in upsert_requests(docs, 64, max_batch_bytes=2 * one)]
    assert sizes == [2, 2, 2]
