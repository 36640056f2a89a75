"""Against a live server with collections (``serve --data-dir``, as scripts/clients_test.sh
runs it): a time-zone-aware ``datetime`` in document metadata is stored as the declared
datetime field's instant, so a datetime range filter finds it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import grpc
import pytest

from hybridsearch_client import Document, HybridSearchClient, HybridSearchError, SchemaField, pb
from hybridsearch_client import filters as f


@pytest.fixture
def dated_collection(client: HybridSearchClient) -> Iterator[str]:
    """A BM25-only collection declaring ``published`` (datetime); deleted after."""
    name = f"py-dates-{uuid.uuid4().hex[:10]}"
    client.create_collection(name, schema=[SchemaField("published", "datetime")])
    yield name
    try:
        client.delete_collection(name)
    except HybridSearchError as error:
        if error.code is not grpc.StatusCode.NOT_FOUND:
            raise


def test_aware_datetime_metadata_is_filtered_as_a_datetime(
    client: HybridSearchClient, dated_collection: str
) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    docs = [
        Document(
            "old", text="solar wind", metadata={"published": dt.datetime(2019, 6, 1, tzinfo=dt.UTC)}
        ),
        # 2020-01-01T01:00+02:00 is 2019-12-31T23:00Z: before the bound once converted.
        Document(
            "edge",
            text="solar wind",
            metadata={"published": dt.datetime(2020, 1, 1, 1, tzinfo=plus_two)},
        ),
        Document(
            "new",
            text="solar wind",
            metadata={
                "published": dt.datetime(2020, 1, 31, 14, tzinfo=plus_two),
                "log": [{"at": dt.datetime(2021, 1, 1, tzinfo=dt.UTC)}],
            },
        ),
    ]
    upserted = client.upsert_documents(docs, collection=dated_collection)
    assert (upserted.accepted_count, upserted.rejected_count) == (3, 0), upserted
    since = f.range("published", gte=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    found = client.search(
        "solar",
        collection=dated_collection,
        mode=pb.RETRIEVAL_MODE_SPARSE,
        filter=since,
        return_fields=[pb.STORED_FIELD_METADATA],
    )
    assert [h.id for h in found.hits] == ["new"]
    stored = Document.from_proto(client.get_document("new", collection=dated_collection))
    assert stored.metadata == {
        "published": "2020-01-31T12:00:00Z",
        "log": [{"at": "2021-01-01T00:00:00Z"}],
    }


def test_naive_datetime_metadata_raises_before_sending(
    client: HybridSearchClient, dated_collection: str
) -> None:
    naive = Document("naive", text="solar", metadata={"published": dt.datetime(2020, 1, 31, 12)})
    with pytest.raises(
        ValueError, match=r"document 'naive': metadata field 'published'.*no time zone"
    ):
        client.upsert_documents([naive], collection=dated_collection)
    assert client.get_index_stats(collection=dated_collection).document_count == 0
