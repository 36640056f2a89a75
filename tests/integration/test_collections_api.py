"""CollectionService and collection routing through a real in-process gRPC server over a data
directory (collections with `HashEncoder` vectors or BM25-only; no ONNX model)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from hybridsearch.api.server import SearchServer
from hybridsearch.config import ServerSettings
from hybridsearch.engine.catalog import CollectionEntry
from hybridsearch.engine.data_dir import open_data_dir
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.registry import CollectionRegistry
from hybridsearch.v1 import collection_pb2 as cpb
from hybridsearch.v1 import collection_pb2_grpc, index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import search_pb2 as pb
from tests.collection_fakes import HASH_MODEL, HashCollectionFactory
from tests.integration.in_process import serving_fake_index as serving_index

SPARSE = pb.RETRIEVAL_MODE_SPARSE
HYBRID = pb.RETRIEVAL_MODE_HYBRID
TENANT = cpb.CollectionSchema(
    fields=[cpb.MetadataField(name="tenant", type=cpb.METADATA_TYPE_KEYWORD)]
)
YEARS = cpb.CollectionSchema(
    fields=[cpb.MetadataField(name="year", type=cpb.METADATA_TYPE_INTEGER, multi_valued=True)]
)


@contextmanager
def serving_data_dir(
    data_dir: Path, factory: HashCollectionFactory | None = None, **settings: object
) -> Iterator[str]:
    """Serve ``data_dir`` in-process on port 0 until the block ends; yields the address."""
    config = replace(ServerSettings(port=0, data_dir=data_dir), **settings)  # type: ignore[arg-type]

    def load(s: ServerSettings) -> CollectionRegistry | LoadedIndex:
        assert s.data_dir is not None
        return open_data_dir(s.data_dir, s, factory or HashCollectionFactory())

    ready: Future[str] = Future()
    stopping = threading.Event()

    async def run() -> None:
        try:
            server = SearchServer(config, load)
            address = await server.start()
            await server.load()
        except BaseException as exc:
            ready.set_exception(exc)
            raise
        ready.set_result(address)
        await asyncio.to_thread(stopping.wait)
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=120)
    finally:
        stopping.set()
        thread.join(timeout=60)


class Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.collections = collection_pb2_grpc.CollectionServiceStub(channel)
        self.index = index_pb2_grpc.IndexServiceStub(channel)
        self.search = search_pb2_grpc.SearchServiceStub(channel)

    def create(self, name: str, **fields: object) -> cpb.CollectionInfo:
        request = cpb.CreateCollectionRequest(name=name, **fields)  # type: ignore[arg-type]
        return self.collections.CreateCollection(request).collection

    def upsert(self, collection: str, *texts: tuple[str, str]) -> None:
        docs = [ipb.Document(id=i, text=t) for i, t in texts]
        request = ipb.UpsertDocumentsRequest(collection=collection, documents=docs)
        self.index.UpsertDocuments(iter([request]))

    def ids(self, collection: str, mode: int = SPARSE, query: str = "cat") -> list[str]:
        request = pb.SearchRequest(query=query, mode=mode, collection=collection)
        return [h.id for h in self.search.Search(request).hits]

    def aliases(self, *actions: cpb.AliasAction) -> dict[str, str]:
        request = cpb.UpdateAliasesRequest(actions=actions)
        return dict(self.collections.UpdateAliases(request).aliases)


def add(alias: str, collection: str) -> cpb.AliasAction:
    return cpb.AliasAction(add=cpb.AddAlias(alias=alias, collection=collection))


def remove(alias: str) -> cpb.AliasAction:
    return cpb.AliasAction(remove=cpb.RemoveAlias(alias=alias))


@pytest.fixture
def stubs(tmp_path: Path) -> Iterator[Stubs]:
    with serving_data_dir(tmp_path / "data") as address, grpc.insecure_channel(address) as ch:
        yield Stubs(ch)


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code()  # type: ignore[no-any-return]


def test_two_collections_with_different_schemas_are_served_at_once(stubs: Stubs) -> None:
    dense = stubs.create("tenants", schema=TENANT, model=HASH_MODEL)
    words = stubs.create("years", schema=YEARS)
    assert (dense.encoder_model_id, words.encoder_model_id) == ("fake-hash", "")
    stubs.upsert("tenants", ("t1", "a cat on a mat"), ("t2", "a dog"))
    stubs.upsert("years", ("y1", "cat facts"), ("y2", "more cat facts here"))
    assert stubs.ids("tenants", HYBRID)[0] == "t1"
    assert set(stubs.ids("years")) == {"y1", "y2"}
    response = stubs.search.Search(pb.SearchRequest(query="cat", mode=SPARSE, collection="years"))
    assert response.applied.collection == "years"
    got = stubs.collections.GetCollection(cpb.GetCollectionRequest(name="tenants")).collection
    assert (got.schema, got.document_count) == (TENANT, 2)
    got = stubs.collections.GetCollection(cpb.GetCollectionRequest(name="years")).collection
    assert got.schema == YEARS
    listed = stubs.collections.ListCollections(cpb.ListCollectionsRequest()).collections
    assert [(c.name, c.default) for c in listed] == [
        ("default", True),
        ("tenants", False),
        ("years", False),
    ]
    # A BM25-only collection answers SPARSE; a mode that needs vectors is refused, saying
    # what the collection is and what to do (nothing about rebuilding: it was never built).
    with pytest.raises(grpc.RpcError) as refused:
        stubs.search.Search(pb.SearchRequest(query="cat", mode=HYBRID, collection="years"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    why = refused.value.details() or ""
    assert "BM25-only" in why and "use mode SPARSE" in why and "rebuild" not in why


def test_an_alias_switch_moves_searches_at_once(stubs: Stubs) -> None:
    stubs.create("v1")
    stubs.create("v2")
    stubs.upsert("v1", ("old", "cat"))
    stubs.upsert("v2", ("new", "cat"))
    assert stubs.aliases(add("live", "v1")) == {"live": "v1"}
    assert stubs.ids("live") == ["old"]
    assert stubs.aliases(add("live", "v2"), add("previous", "v1")) == {
        "live": "v2",
        "previous": "v1",
    }
    response = stubs.search.Search(pb.SearchRequest(query="cat", mode=SPARSE, collection="live"))
    assert ([h.id for h in response.hits], response.applied.collection) == (["new"], "v2")
    assert stubs.ids("previous") == ["old"]
    # All or nothing: the second action fails, so the first is not applied either.
    assert code_of(lambda: stubs.aliases(remove("live"), add("x", "missing"))) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert stubs.ids("live") == ["new"]


def test_names_errors_and_statuses(stubs: Stubs) -> None:
    stubs.create("docs")
    assert code_of(lambda: stubs.create("docs")) == grpc.StatusCode.ALREADY_EXISTS
    assert code_of(lambda: stubs.create("Bad Name")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stubs.ids("nope")) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stubs.ids("nope")
    assert "no collection or alias named 'nope'" in (caught.value.details() or "")
    assert code_of(lambda: stubs.ids("UPPER")) == grpc.StatusCode.INVALID_ARGUMENT
    delete_default = cpb.DeleteCollectionRequest(name="default")
    assert code_of(lambda: stubs.collections.DeleteCollection(delete_default)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    unknown_model = code_of(lambda: stubs.create("m", model="no-such-model"))
    assert unknown_model == grpc.StatusCode.INVALID_ARGUMENT
    bad_schema = cpb.CollectionSchema(fields=[cpb.MetadataField(name="a"), cpb.MetadataField()])
    assert code_of(lambda: stubs.create("s", schema=bad_schema)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_batch_search_requests_may_name_different_collections(stubs: Stubs) -> None:
    stubs.create("a")
    stubs.create("b")
    stubs.upsert("a", ("in-a", "cat"))
    stubs.upsert("b", ("in-b", "cat"))
    requests = [
        pb.SearchRequest(query="cat", mode=SPARSE, collection=name) for name in ("a", "b", "a")
    ]
    responses = stubs.search.BatchSearch(pb.BatchSearchRequest(requests=requests)).responses
    assert [(r.hits[0].id, r.applied.collection) for r in responses] == [
        ("in-a", "a"),
        ("in-b", "b"),
        ("in-a", "a"),
    ]


def test_index_service_works_on_a_named_collection(stubs: Stubs) -> None:
    stubs.create("docs", model=HASH_MODEL)
    stubs.upsert("docs", ("a", "a cat"), ("b", "a dog"))
    got = stubs.index.GetDocument(ipb.GetDocumentRequest(id="a", collection="docs"))
    assert got.document.text == "a cat"
    assert code_of(lambda: stubs.index.GetDocument(ipb.GetDocumentRequest(id="a"))) == (
        grpc.StatusCode.NOT_FOUND  # not in the default collection
    )
    deleted = stubs.index.DeleteDocuments(ipb.DeleteDocumentsRequest(ids=["b"], collection="docs"))
    assert deleted.deleted_count == 1
    stats = stubs.index.GetIndexStats(ipb.GetIndexStatsRequest(collection="docs"))
    assert stats.document_count == 1
    default_stats = stubs.index.GetIndexStats(ipb.GetIndexStatsRequest())
    assert default_stats.document_count == 0
    compacted = stubs.index.Compact(ipb.CompactRequest(collection="docs"))
    assert compacted.document_count == 1
    # A stream whose later message names another collection is refused.
    mixed = [
        ipb.UpsertDocumentsRequest(collection="docs", documents=[ipb.Document(id="c", text="x")]),
        ipb.UpsertDocumentsRequest(collection="default", documents=[]),
    ]
    assert code_of(lambda: stubs.index.UpsertDocuments(iter(mixed))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_deleting_a_collection_during_a_search_stream(stubs: Stubs) -> None:
    stubs.create("docs", model=HASH_MODEL)
    stubs.upsert("docs", *[(f"d{i}", f"cat number {i}") for i in range(50)])
    requests: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()

    def send() -> Iterator[pb.SearchStreamRequest]:
        while (request := requests.get()) is not None:
            yield request

    def request(n: int) -> pb.SearchStreamRequest:
        search = pb.SearchRequest(query="cat", mode=HYBRID, collection="docs")
        return pb.SearchStreamRequest(request_id=str(n), search=search, progressive=n % 2 == 0)

    answers = stubs.search.SearchStream(send())
    for n in range(20):
        requests.put(request(n))
    finals = 0
    while finals < 20:  # every request sent before the delete is answered with hits
        answer = next(answers)
        assert not answer.HasField("error"), answer.error
        finals += 0 if answer.partial else 1
    deleting = threading.Thread(
        target=lambda: stubs.collections.DeleteCollection(cpb.DeleteCollectionRequest(name="docs"))
    )
    for n in range(20, 60):  # searches sent while the deletion runs
        requests.put(request(n))
    deleting.start()
    deleting.join(timeout=60)
    requests.put(request(60))
    requests.put(None)
    rest = list(answers)
    codes = {a.error.code for a in rest if a.HasField("error")}
    assert codes <= {grpc.StatusCode.NOT_FOUND.value[0]}  # never INTERNAL or UNAVAILABLE
    assert all(len(a.response.hits) > 0 for a in rest if not a.HasField("error"))
    assert rest[-1].error.code == grpc.StatusCode.NOT_FOUND.value[0]  # sent after: gone


def test_an_idle_upsert_stream_holds_up_no_deletion_and_no_write(stubs: Stubs) -> None:
    stubs.create("victim")
    batches: queue.Queue[ipb.UpsertDocumentsRequest | None] = queue.Queue()

    def send() -> Iterator[ipb.UpsertDocumentsRequest]:
        while (batch := batches.get()) is not None:
            yield batch

    def batch(doc_id: str) -> ipb.UpsertDocumentsRequest:
        return ipb.UpsertDocumentsRequest(
            collection="victim", documents=[ipb.Document(id=doc_id, text="a cat")]
        )

    stream = stubs.index.UpsertDocuments.future(send(), timeout=60)
    batches.put(batch("first"))
    deadline = time.monotonic() + 10
    while stubs.ids("victim") != ["first"]:  # committed; the stream stays open, idle
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # None of these waits for the idle stream (they took the 30 s drain timeout, and the
    # write and the create queued behind the deletion on the write threads).
    delete = cpb.DeleteCollectionRequest(name="victim")
    stubs.collections.DeleteCollection(delete, timeout=5)
    other = cpb.CreateCollectionRequest(name="other")
    assert stubs.collections.CreateCollection(other, timeout=5).collection.name == "other"
    write = ipb.UpsertDocumentsRequest(documents=[ipb.Document(id="d", text="a cat")])
    assert stubs.index.UpsertDocuments(iter([write]), timeout=5).accepted_count == 1
    batches.put(batch("second"))  # the stream's next batch: its collection is gone
    batches.put(None)
    with pytest.raises(grpc.RpcError) as caught:
        stream.result(timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # not INTERNAL
    assert "collection 'victim' was deleted" in (caught.value.details() or "")


class GatedBuildFactory(HashCollectionFactory):
    """Builds collection ``slow`` only once ``gate`` is set (the change lock held meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.building = threading.Event()
        self.gate = threading.Event()

    def build_empty(self, out: Path, entry: CollectionEntry) -> None:
        if entry.name == "slow":
            self.building.set()
            assert self.gate.wait(30)
        super().build_empty(out, entry)


def test_a_change_whose_deadline_passed_while_it_waited_is_not_applied(tmp_path: Path) -> None:
    factory = GatedBuildFactory()
    with (
        serving_data_dir(tmp_path / "data", factory) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stubs = Stubs(channel)
        stubs.create("doomed")
        slow = stubs.collections.CreateCollection.future(cpb.CreateCollectionRequest(name="slow"))
        assert factory.building.wait(10)
        # Each waits for the slow create (the change before it) past its deadline.
        changes = [
            lambda: stubs.collections.CreateCollection(
                cpb.CreateCollectionRequest(name="late"), timeout=0.5
            ),
            lambda: stubs.collections.DeleteCollection(
                cpb.DeleteCollectionRequest(name="doomed"), timeout=0.5
            ),
            lambda: stubs.collections.UpdateAliases(
                cpb.UpdateAliasesRequest(actions=[add("live", "doomed")]), timeout=0.5
            ),
        ]
        with ThreadPoolExecutor(len(changes)) as pool:
            codes = list(pool.map(code_of, changes))
        assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 3
        factory.gate.set()
        assert slow.result(timeout=30).collection.name == "slow"
        time.sleep(0.5)  # the waiting changes ran (or were refused) by now
        listed = stubs.collections.ListCollections(cpb.ListCollectionsRequest()).collections
        # None of them was applied after its caller was told DEADLINE_EXCEEDED.
        assert [(c.name, list(c.aliases)) for c in listed] == [
            ("default", []),
            ("doomed", []),
            ("slow", []),
        ]


def test_a_restarted_server_serves_the_same_collections(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving_data_dir(data_dir) as address, grpc.insecure_channel(address) as channel:
        stubs = Stubs(channel)
        stubs.create("docs", schema=TENANT, model=HASH_MODEL)
        stubs.upsert("docs", ("a", "cat"))
        stubs.aliases(add("live", "docs"))
    with serving_data_dir(data_dir) as address, grpc.insecure_channel(address) as channel:
        stubs = Stubs(channel)
        assert stubs.ids("live", HYBRID) == ["a"]
        got = stubs.collections.GetCollection(cpb.GetCollectionRequest(name="live"))
        assert (got.collection.name, got.collection.schema) == ("docs", TENANT)


def test_read_only_tokens_may_not_call_collection_service(tmp_path: Path) -> None:
    with (
        serving_data_dir(tmp_path / "data", auth_tokens="full", auth_read_only_tokens="ro") as addr,
        grpc.insecure_channel(addr) as channel,
    ):
        stub = collection_pb2_grpc.CollectionServiceStub(channel)
        listing = cpb.ListCollectionsRequest()
        ro = (("authorization", "Bearer ro"),)
        assert code_of(lambda: stub.ListCollections(listing, metadata=ro)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        full = (("authorization", "Bearer full"),)
        assert len(stub.ListCollections(listing, metadata=full).collections) == 1


def test_a_single_index_server_lists_it_and_refuses_changes(tmp_path: Path) -> None:
    from hybridsearch.types import Document
    from tests.fakes import build_fake_index

    index = build_fake_index(tmp_path / "idx", [Document("a", "", "a cat")])
    with serving_index(index) as address, grpc.insecure_channel(address) as channel:
        stubs = Stubs(channel)
        listed = stubs.collections.ListCollections(cpb.ListCollectionsRequest()).collections
        assert [(c.name, c.default, c.document_count) for c in listed] == [("default", True, 1)]
        assert stubs.ids("default") == ["a"] == stubs.ids("")
        with pytest.raises(grpc.RpcError) as caught:
            stubs.create("other")
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "--data-dir" in (caught.value.details() or "")
