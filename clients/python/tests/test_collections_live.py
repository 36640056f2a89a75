"""Against a live server: filtered hybrid search, pagination and highlights on the filter
collection (HYBRIDSEARCH_FILTER_COLLECTION: SciFact with synthetic metadata), and a
collection's lifecycle through CollectionService. These tests never touch the default
collection."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from hybridsearch_client import (
    AddAlias,
    AsyncHybridSearchClient,
    Document,
    HybridSearchClient,
    HybridSearchError,
    SchemaField,
    pb,
)
from hybridsearch_client import filters as f

# Every test here needs a server with collections (`serve --data-dir`) and the filter
# collection: without HYBRIDSEARCH_FILTER_COLLECTION they all skip, naming it.
pytestmark = pytest.mark.usefixtures("filter_collection")

HYBRID = pb.RETRIEVAL_MODE_HYBRID
SPARSE = pb.RETRIEVAL_MODE_SPARSE
QUERY = "cancer treatment"
QUERY_STEMS = ("cancer", "treat")
JOURNALS = {"nature", "cell"}
# journal is nature or cell AND year >= 2010 AND NOT erratum exists
RECENT_CLEAN = (
    f.match("journal", *sorted(JOURNALS)) & f.range("year", gte=2010) & ~f.exists("erratum")
)


def _metadata(hit: pb.Hit) -> dict[str, Any]:
    assert hit.HasField("metadata"), f"hit {hit.id} carries no metadata"
    result: dict[str, Any] = json_format.MessageToDict(hit.metadata)
    return result


def _ids(response: pb.SearchResponse) -> list[str]:
    return [h.id for h in response.hits]


def test_filtered_hybrid_search(client: HybridSearchClient, filter_collection: str) -> None:
    response = client.search(
        QUERY,
        collection=filter_collection,
        mode=HYBRID,
        top_k=10,
        filter=RECENT_CLEAN,
        return_fields=[pb.STORED_FIELD_METADATA],
    )
    assert response.applied.mode == HYBRID
    assert len(response.hits) == 10
    for hit in response.hits:
        metadata = _metadata(hit)
        assert metadata["journal"] in JOURNALS, (hit.id, metadata)
        assert metadata["year"] >= 2010, (hit.id, metadata)
        assert "erratum" not in metadata, (hit.id, metadata)
    # The filter really restricts: the unfiltered top 10 holds documents it excludes.
    unfiltered = client.search(
        QUERY,
        collection=filter_collection,
        mode=HYBRID,
        top_k=10,
        return_fields=[pb.STORED_FIELD_METADATA],
    )
    assert any(
        _metadata(h)["journal"] not in JOURNALS or _metadata(h)["year"] < 2010
        for h in unfiltered.hits
    )


def test_raw_filter_message_and_datetime_range(
    client: HybridSearchClient, filter_collection: str
) -> None:
    since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    built = f.range("published", gte=since) & f.match("open_access", True)
    options: dict[str, Any] = {
        "collection": filter_collection,
        "mode": HYBRID,
        "top_k": 5,
        "return_fields": [pb.STORED_FIELD_METADATA],
    }
    response = client.search(QUERY, filter=built.to_filter(), **options)
    assert len(response.hits) == 5
    for hit in response.hits:
        metadata = _metadata(hit)
        assert metadata["published"] >= "2020-01-01T00:00:00Z"
        assert metadata["open_access"] is True
    assert _ids(client.search(QUERY, filter=built, **options)) == _ids(response)


def test_filter_applies_to_batch_and_stream(
    client: HybridSearchClient, filter_collection: str
) -> None:
    options: dict[str, Any] = {
        "collection": filter_collection,
        "mode": HYBRID,
        "top_k": 5,
        "filter": RECENT_CLEAN,
    }
    expected = _ids(client.search(QUERY, **options))
    batch = client.batch_search([QUERY, "gene expression"], **options)
    assert _ids(batch[0]) == expected
    results = list(client.search_stream([("q", QUERY)], **options))
    assert [r.request_id for r in results] == ["q"]
    assert results[0].response is not None
    assert _ids(results[0].response) == expected


def test_pagination(client: HybridSearchClient, filter_collection: str) -> None:
    k = 5
    options: dict[str, Any] = {
        "collection": filter_collection,
        "mode": HYBRID,
        "filter": RECENT_CLEAN,
    }
    both = client.search(QUERY, top_k=2 * k, **options)
    first = client.search(QUERY, top_k=k, **options)
    second = client.search(QUERY, top_k=k, offset=k, **options)
    assert len(both.hits) == 2 * k
    assert second.applied.offset == k
    assert _ids(first) == _ids(both)[:k]
    assert _ids(second) == _ids(both)[k:]
    assert [h.rank for h in second.hits] == list(range(k + 1, 2 * k + 1))
    assert not set(_ids(first)) & set(_ids(second))


def test_highlights(client: HybridSearchClient, filter_collection: str) -> None:
    response = client.search(
        QUERY,
        collection=filter_collection,
        mode=HYBRID,
        top_k=5,
        highlight_max_chars=120,
    )
    highlighted = [h for h in response.hits if h.highlights]
    assert highlighted, "no hit has a highlight"
    for hit in highlighted:
        for highlight in hit.highlights:
            assert highlight.field in (pb.STORED_FIELD_TITLE, pb.STORED_FIELD_TEXT)
            assert 0 < len(highlight.snippet) <= 120
            assert highlight.matches
            for span in highlight.matches:
                assert 0 <= span.start < span.end <= len(highlight.snippet)
                word = highlight.snippet[span.start : span.end].lower()
                assert word.startswith(QUERY_STEMS), (hit.id, highlight.snippet, word)


def test_bad_filter_is_invalid_argument(client: HybridSearchClient, filter_collection: str) -> None:
    with pytest.raises(HybridSearchError) as info:
        client.search(
            QUERY,
            collection=filter_collection,
            filter=f.range("year", gte=2010) & f.match("no_such_field", "x"),
        )
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in info.value.field_violations]
    assert fields, info.value
    assert all(field.startswith("filter.") for field in fields), fields


def test_unknown_collection_is_not_found(client: HybridSearchClient) -> None:
    missing = f"py-missing-{uuid.uuid4().hex[:8]}"
    for call in (
        lambda: client.get_collection(missing),
        lambda: client.search(QUERY, collection=missing),
        lambda: client.get_index_stats(collection=missing),
    ):
        with pytest.raises(HybridSearchError) as info:
            call()
        assert info.value.code is grpc.StatusCode.NOT_FOUND, info.value


SCHEMA = [
    SchemaField("tenant", "keyword"),
    SchemaField("year", "integer"),
    SchemaField("tags", "keyword", multi_valued=True),
]


@pytest.fixture
def collection_names(client: HybridSearchClient) -> Iterator[tuple[str, str, str]]:
    """Two unique collection names and an alias; whatever exists of them is deleted after."""
    suffix = uuid.uuid4().hex[:10]
    names = (f"py-live-a-{suffix}", f"py-live-b-{suffix}", f"py-live-alias-{suffix}")
    yield names
    for name in names[:2]:
        try:
            client.delete_collection(name)  # its aliases go with it
        except HybridSearchError as error:
            if error.code is not grpc.StatusCode.NOT_FOUND:
                raise


def test_collection_lifecycle(
    client: HybridSearchClient, collection_names: tuple[str, str, str]
) -> None:
    first, second, alias = collection_names
    created = client.create_collection(first, schema=SCHEMA)  # model None: BM25-only
    assert created.name == first
    assert created.encoder_model_id == ""
    assert created.document_count == 0
    assert not created.default
    client.create_collection(second, schema=SCHEMA, dense_index="exact")

    info = client.get_collection(first)
    assert [SchemaField.from_proto(field) for field in info.schema.fields] == SCHEMA
    assert {first, second} <= {c.name for c in client.list_collections()}

    with pytest.raises(HybridSearchError) as info_error:
        client.create_collection(first)
    assert info_error.value.code is grpc.StatusCode.ALREADY_EXISTS

    # The alias names the first collection, then moves to the second in one atomic call that
    # also adds a second alias (to the first).
    assert client.set_alias(alias, first)[alias] == first
    old = f"{alias}-old"
    aliases = client.update_aliases([AddAlias(alias, second), AddAlias(old, first)])
    assert (aliases[alias], aliases[old]) == (second, first)
    assert client.get_collection(alias).name == second
    assert client.get_collection(first).aliases == [old]
    assert old not in client.remove_alias(old)

    docs = [
        Document(
            "d1",
            title="Solar wind",
            text="plasma physics of the solar wind",
            metadata={"tenant": "acme", "year": 2019, "tags": ["space", "plasma"]},
        ),
        Document(
            "d2",
            title="Solar panels",
            text="solar cells on roofs",
            metadata={"tenant": "acme", "year": 2023, "tags": ["energy"]},
        ),
        Document(
            "d3",
            title="Solar eclipse",
            text="the solar eclipse of 1999",
            metadata={"tenant": "other", "year": 1999},
        ),
    ]
    upserted = client.upsert_documents(docs, collection=alias)
    assert (upserted.accepted_count, upserted.rejected_count) == (3, 0)
    assert client.get_index_stats(collection=second).document_count == 3
    assert client.get_index_stats(collection=first).document_count == 0
    assert client.get_document("d2", collection=alias).title == "Solar panels"

    acme_recent = f.match("tenant", "acme") & f.range("year", gte=2020)
    found = client.search("solar", collection=alias, mode=SPARSE, filter=acme_recent)
    assert _ids(found) == ["d2"]
    assert found.applied.collection == second
    tagged = client.search(
        "solar", collection=alias, mode=SPARSE, filter=f.match("tags", "space", "energy")
    )
    assert sorted(_ids(tagged)) == ["d1", "d2"]
    no_tags = client.search("solar", collection=alias, mode=SPARSE, filter=f.is_null("tags"))
    assert _ids(no_tags) == ["d3"]

    deleted = client.delete_documents(["d3"], collection=alias)
    assert deleted.deleted_count == 1
    assert client.compact(collection=second).document_count == 2

    assert client.delete_collection(second) == [alias]
    assert client.delete_collection(first) == []
    names = {c.name for c in client.list_collections()}
    assert not {first, second} & names
    with pytest.raises(HybridSearchError) as gone:
        client.get_collection(alias)
    assert gone.value.code is grpc.StatusCode.NOT_FOUND


def test_async_collections_and_filters(addr: str, filter_collection: str) -> None:
    async def scenario() -> None:
        async with AsyncHybridSearchClient(addr, timeout=10.0) as client:
            info = await client.get_collection(filter_collection)
            assert info.encoder_model_id, "the filter collection should be hybrid"
            assert {fld.name for fld in info.schema.fields} >= {"year", "journal", "erratum"}
            assert info.name in {c.name for c in await client.list_collections()}
            response = await client.search(
                QUERY,
                collection=filter_collection,
                mode=HYBRID,
                top_k=3,
                offset=2,
                filter=RECENT_CLEAN,
                highlight=True,
                return_fields=[pb.STORED_FIELD_METADATA],
            )
            assert [h.rank for h in response.hits] == [3, 4, 5]
            assert all(_metadata(h)["journal"] in JOURNALS for h in response.hits)
            with pytest.raises(HybridSearchError) as info_error:
                await client.delete_collection(f"py-missing-{uuid.uuid4().hex[:8]}")
            assert info_error.value.code is grpc.StatusCode.NOT_FOUND

    asyncio.run(scenario())
