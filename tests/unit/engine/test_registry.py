"""CollectionRegistry over a real data directory: create, list, aliases, delete, name rules,
errors, restart, and all-or-nothing changes when a file operation fails midway."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.engine import registry as registry_module
from hybridsearch.engine.catalog import load_catalog, name_problem
from hybridsearch.engine.data_dir import open_data_dir
from hybridsearch.engine.registry import AddAlias, CollectionRegistry, RemoveAlias
from hybridsearch.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.sharding.layout import load_shard_manifest, shard_dir_name, shard_of
from hybridsearch.storage import files
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Document, Query, RetrievalMode
from tests.collection_fakes import HASH_MODEL, HashCollectionFactory

SCHEMA = CollectionSchema((MetadataField("tenant", MetadataType.KEYWORD),))


def open_registry(data_dir: Path) -> CollectionRegistry:
    return open_data_dir(data_dir, ServerSettings(), HashCollectionFactory())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def registry(data_dir: Path) -> Iterator[CollectionRegistry]:
    opened = open_registry(data_dir)
    yield opened
    opened.close()


def search_ids(registry: CollectionRegistry, name: str, mode: RetrievalMode) -> list[str]:
    with registry.use(name) as served:
        result = served.searcher.search(Query(text="cat", top_k=10, mode=mode))
    return [hit.id for hit in result.hits]


def test_a_new_data_directory_serves_an_empty_default_collection(
    registry: CollectionRegistry, data_dir: Path
) -> None:
    [default] = registry.describe_all()
    assert (default.name, default.default, default.document_count) == ("default", True, 0)
    assert (data_dir / "collections" / "default" / "manifest.json").is_file()
    with registry.use("") as served:
        assert served.name == "default"


def test_create_search_and_describe_two_collections(registry: CollectionRegistry) -> None:
    created = registry.create("docs", schema=SCHEMA, model=HASH_MODEL)
    assert (created.name, created.schema, created.encoder_model_id) == ("docs", SCHEMA, "fake-hash")
    registry.create("words", model="")
    with registry.use("docs") as served:
        served.ingestor().upsert([Document("a", "", "a cat"), Document("b", "", "a dog")])
    with registry.use("words") as served:
        served.ingestor().upsert([Document("w", "", "cat words")])
    assert search_ids(registry, "docs", RetrievalMode.HYBRID)[0] == "a"
    assert search_ids(registry, "words", RetrievalMode.SPARSE) == ["w"]
    names = [d.name for d in registry.describe_all()]
    assert names == ["default", "docs", "words"]
    assert registry.describe("docs").document_count == 2
    assert registry.describe("words").encoder_model_id == ""


def test_a_sharded_collection_is_created_written_by_shard_and_deleted(
    registry: CollectionRegistry, data_dir: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"shards: must be 0 .* \[1, 1024\]"):
        registry.create("big", model=HASH_MODEL, shards=1025)
    created = registry.create("split", schema=SCHEMA, model=HASH_MODEL, shards=3)
    assert (created.shard_count, created.document_count, created.schema) == (3, 0, SCHEMA)
    root = data_dir / "collections" / "split"
    assert load_shard_manifest(root).shard_count == 3
    docs = [Document(f"d{i}", "", f"a cat number {i}") for i in range(12)]
    with registry.use("split") as served:
        served.ingestor().upsert(docs)
    for shard in range(3):
        expected = sum(shard_of(d.id, 3) == shard for d in docs)
        assert open_index(root / shard_dir_name(shard)).manifest.document_count == expected
    found = search_ids(registry, "split", RetrievalMode.HYBRID)  # top 10 of the 3 shards
    assert len(set(found)) == 10 and {shard_of(i, 3) for i in found} == {0, 1, 2}
    assert registry.describe("split").document_count == 12
    assert registry.describe("default").shard_count == 0
    registry.update_aliases([AddAlias("live", "split")])
    assert registry.delete("split") == ["live"]
    assert not root.exists() and not list(data_dir.glob(".tmp-*"))


def test_aliases_move_atomically_and_resolve(registry: CollectionRegistry) -> None:
    registry.create("v1", model="")
    registry.create("v2", model="")
    assert registry.update_aliases([AddAlias("live", "v1"), AddAlias("old", "v1")]) == {
        "live": "v1",
        "old": "v1",
    }
    with registry.use("live") as served:
        assert served.name == "v1"
    aliases = registry.update_aliases([AddAlias("live", "v2"), RemoveAlias("old")])
    assert aliases == {"live": "v2"}
    assert registry.describe("live").name == "v2"
    assert registry.describe("v2").aliases == ["live"]


def test_an_invalid_action_applies_none_of_the_call(registry: CollectionRegistry) -> None:
    registry.create("v1", model="")
    registry.update_aliases([AddAlias("live", "v1")])
    with pytest.raises(NotFoundError, match=r"actions\[1\].add.collection"):
        registry.update_aliases([RemoveAlias("live"), AddAlias("other", "missing")])
    assert registry.catalog.aliases == {"live": "v1"}
    with pytest.raises(InvalidArgumentError) as caught:
        registry.update_aliases([AddAlias("v1", "default")])
    assert caught.value.violations[0].field == "actions[0].add.alias"
    with pytest.raises(InvalidArgumentError, match="is an alias"):
        registry.update_aliases([AddAlias("second", "live")])
    with pytest.raises(NotFoundError):
        registry.update_aliases([RemoveAlias("nothing")])
    with pytest.raises(InvalidArgumentError, match="1 to 100"):
        registry.update_aliases([])
    with pytest.raises(InvalidArgumentError, match="1 to 100"):
        registry.update_aliases([AddAlias(f"a{i}", "v1") for i in range(101)])


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "a" * 65, "sp ace", "é", "a/b"])
def test_names_break_the_rule(registry: CollectionRegistry, name: str) -> None:
    assert name_problem(name) is not None
    with pytest.raises(InvalidArgumentError) as caught:
        registry.create(name)
    assert caught.value.violations[0].field == "name"


@pytest.mark.parametrize("name", ["a", "0", "a_b-c", "x" * 64])
def test_names_that_follow_the_rule(name: str) -> None:
    assert name_problem(name) is None


def test_taken_names_and_unknown_ones(registry: CollectionRegistry) -> None:
    registry.create("docs", model="")
    registry.update_aliases([AddAlias("live", "docs")])
    with pytest.raises(AlreadyExistsError, match="already a collection"):
        registry.create("docs")
    with pytest.raises(AlreadyExistsError, match="already an alias"):
        registry.create("live")
    with pytest.raises(NotFoundError, match="no collection or alias named 'nope'"):
        registry.describe("nope")
    with pytest.raises(NotFoundError):
        registry.delete("nope")
    with pytest.raises(InvalidArgumentError, match="unknown model"):
        registry.create("other", model="nope")


def test_delete_removes_the_collection_and_its_aliases(
    registry: CollectionRegistry, data_dir: Path
) -> None:
    registry.create("docs", model="")
    registry.update_aliases([AddAlias("live", "docs")])
    with pytest.raises(InvalidArgumentError, match="is an alias"):
        registry.delete("live")
    assert registry.delete("docs") == ["live"]
    assert registry.catalog.aliases == {}
    assert not (data_dir / "collections" / "docs").exists()
    with pytest.raises(NotFoundError):
        registry.describe("live")
    with pytest.raises(FailedPreconditionError, match="default collection"):
        registry.delete("default")
    registry.create("docs", model="")  # the name is free again
    assert registry.describe("docs").document_count == 0


def test_delete_waits_for_the_calls_using_the_collection(registry: CollectionRegistry) -> None:
    registry.create("docs", model="")
    with registry.use("docs") as served:
        served.ingestor().upsert([Document("a", "", "a cat")])
    deleted = threading.Event()
    with registry.use("docs") as served:
        thread = threading.Thread(target=lambda: (registry.delete("docs"), deleted.set()))
        thread.start()
        assert not deleted.wait(0.3)  # held: the delete waits
        with pytest.raises(NotFoundError):  # but new lookups already miss it
            registry.describe("docs")
        hits = served.searcher.search(Query(text="cat", top_k=5, mode=RetrievalMode.SPARSE))
        assert [h.id for h in hits.hits] == ["a"]
    thread.join(timeout=30)
    assert deleted.is_set()


def test_a_draining_delete_holds_up_no_other_change(registry: CollectionRegistry) -> None:
    registry.create("docs", model="")
    deleted = threading.Event()
    with registry.use("docs") as served:
        thread = threading.Thread(target=lambda: (registry.delete("docs"), deleted.set()))
        thread.start()
        assert not deleted.wait(0.3)  # still waiting for this call
        # Other changes go on meanwhile (they waited for the deletion's whole drain).
        registry.create("other", model="")
        assert registry.update_aliases([AddAlias("live", "other")]) == {"live": "other"}
        with pytest.raises(UnavailableError, match="'docs' is still being deleted"):
            registry.create("docs", model="")
        assert not deleted.is_set()
        with pytest.raises(NotFoundError, match="collection 'docs' was deleted"):
            registry.hold(served).__enter__()  # a stream's next batch
    thread.join(timeout=30)
    assert deleted.is_set()
    registry.create("docs", model="")  # the name is free again


def test_a_write_on_a_collection_closed_by_its_deletion_is_not_found(data_dir: Path) -> None:
    registry = open_data_dir(
        data_dir, ServerSettings(), HashCollectionFactory(), drain_timeout_s=0.2
    )
    try:
        registry.create("docs", model="")
        with (
            pytest.raises(NotFoundError, match="'docs' was deleted while the call used it"),
            registry.use("docs") as served,
        ):
            registry.delete("docs")  # gives up waiting after 0.2 s and closes it
            served.ingestor().upsert([Document("a", "", "a cat")])  # not INTERNAL
    finally:
        registry.close()


def test_a_read_only_registry_follows_the_writers_catalog(
    registry: CollectionRegistry, data_dir: Path
) -> None:
    registry.create("v1", model="")
    with registry.use("v1") as served:
        served.ingestor().upsert([Document("old", "", "a cat")])
    registry.update_aliases([AddAlias("live", "v1")])
    # A second server on the directory, read-only (real factory: BM25-only needs no model).
    reader = open_data_dir(data_dir, ServerSettings(read_only=True, follow_interval_s=0.05))
    try:
        assert search_ids(reader, "live", RetrievalMode.SPARSE) == ["old"]
        with reader.use("v1") as was_v1:
            pass
        registry.create("v2", model="")
        with registry.use("v2") as served:
            served.ingestor().upsert([Document("new", "", "a cat")])
        registry.update_aliases([AddAlias("live", "v2")])
        registry.delete("v1")
        deadline = time.monotonic() + 10
        while reader.catalog != registry.catalog:  # its follower thread catches up
            assert time.monotonic() < deadline, reader.catalog
            time.sleep(0.02)
        while search_ids(reader, "live", RetrievalMode.SPARSE) != ["new"]:  # v2's commit too
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert search_ids(reader, "v2", RetrievalMode.SPARSE) == ["new"]
        with pytest.raises(NotFoundError):
            reader.describe("v1")
        assert was_v1.retired  # closed, its directory left to the writer
        with pytest.raises(FailedPreconditionError, match="read-only"):
            reader.create("v3")
        assert not reader.follow_catalog()  # nothing new
    finally:
        reader.close()


def test_a_follower_serves_a_collection_deleted_and_created_again_within_a_second(
    registry: CollectionRegistry, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog's entries of both creations were equal (``created`` has whole seconds):
    the reader kept serving the deleted collection's documents."""
    monkeypatch.setattr(registry_module, "utc_now", lambda: "2026-12-03T07:00:00Z")
    registry.create("x", model="")
    with registry.use("x") as served:
        served.ingestor().upsert([Document("old", "", "a cat")])
    reader = open_data_dir(data_dir, ServerSettings(read_only=True, follow_interval_s=3600))
    try:
        assert search_ids(reader, "x", RetrievalMode.SPARSE) == ["old"]
        registry.delete("x")
        registry.create("x", model="")
        with registry.use("x") as served:
            served.ingestor().upsert([Document("new", "", "a cat")])
        assert reader.follow_catalog()
        assert search_ids(reader, "x", RetrievalMode.SPARSE) == ["new"]
    finally:
        reader.close()


def test_a_follower_goes_on_following_while_a_deleted_collection_drains(
    registry: CollectionRegistry, data_dir: Path
) -> None:
    """A call still using a collection the writer deleted holds it open, but not the
    follower: it serves the next catalog at once and closes the collection when the call
    ends (it waited for that call, up to the drain timeout, before serving anything new)."""
    for name in ("a", "b"):
        registry.create(name, model="")
        with registry.use(name) as served:
            served.ingestor().upsert([Document(f"{name}1", "", "a cat")])
    reader = open_data_dir(
        data_dir, ServerSettings(read_only=True, follow_interval_s=3600), drain_timeout_s=30
    )
    try:
        with reader.use("a") as held_a, reader.use("b") as held_b:
            registry.delete("a")
            registry.delete("b")
            registry.create("c", model="")
            started = time.monotonic()
            assert reader.follow_catalog()
            assert time.monotonic() - started < 10  # not 30 s per deleted collection
            assert sorted(s.name for s in reader.served()) == ["c", "default"]
            assert held_a.retired and held_b.retired
            # still open for the calls holding them
            query = Query(text="cat", top_k=5, mode=RetrievalMode.SPARSE)
            assert held_a.searcher.search(query).hits[0].id == "a1"
        registry.create("d", model="")
        assert reader.follow_catalog()
        assert "d" in {s.name for s in reader.served()}
    finally:
        reader.close()  # waits for the closing threads


def test_restart_reloads_collections_aliases_and_documents(data_dir: Path) -> None:
    first = open_registry(data_dir)
    first.create("docs", schema=SCHEMA, model=HASH_MODEL)
    first.update_aliases([AddAlias("live", "docs")])
    with first.use("live") as served:
        served.ingestor().upsert([Document("a", "", "a cat")])
    first.close()
    second = open_registry(data_dir)
    try:
        assert second.describe("live").name == "docs"
        assert second.describe("docs").schema == SCHEMA
        assert search_ids(second, "live", RetrievalMode.HYBRID) == ["a"]
    finally:
        second.close()


def test_a_single_index_registry_refuses_changes(registry: CollectionRegistry) -> None:
    single = CollectionRegistry.single(registry.default.loaded)
    with pytest.raises(FailedPreconditionError, match="--data-dir"):
        single.create("x")
    with pytest.raises(FailedPreconditionError, match="--data-dir"):
        single.update_aliases([AddAlias("a", "default")])


# -- fault injection: a failure at each file operation leaves the old state or the new --------


def state_after_reopen(data_dir: Path) -> tuple[set[str], dict[str, str]]:
    """Collections and aliases as a restarted registry serves them (each one checked whole)."""
    reopened = open_registry(data_dir)
    try:
        names = {d.name for d in reopened.describe_all()}
        for name in names:
            assert search_ids(reopened, name, RetrievalMode.SPARSE) is not None
        leftovers = [p.name for p in data_dir.iterdir() if p.name.startswith(".tmp-")]
        assert leftovers == []
        assert {p.name for p in (data_dir / "collections").iterdir()} == names
        return names, dict(reopened.catalog.aliases)
    finally:
        reopened.close()


class InjectedFaultError(Exception):
    pass


def failing_at(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, nth: int) -> list[int]:
    """Make the ``nth`` call of ``target.name`` raise `InjectedFaultError`."""
    original: Callable[..., Any] = getattr(target, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth:
            raise InjectedFaultError(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)
    return calls


# Each file operation a change makes: the rename into place, the directory fsyncs, the
# catalog's atomic write (its own rename and fsync), removing a directory.
POINTS = [
    (registry_module.os, "replace"),
    (registry_module, "fsync_dir"),
    (files.os, "replace"),
    (files, "fsync_dir"),
    (registry_module.shutil, "rmtree"),
]


@pytest.mark.parametrize(("target", "name"), POINTS)
@pytest.mark.parametrize("nth", [1, 2])
def test_a_failing_create_is_all_or_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, target: Any, name: str, nth: int
) -> None:
    registry = open_registry(data_dir)
    with monkeypatch.context() as patch:
        failing_at(patch, target, name, nth)
        with contextlib.suppress(InjectedFaultError):
            registry.create("docs", model=HASH_MODEL)
    registry.close()
    names, _ = state_after_reopen(data_dir)
    assert names in ({"default"}, {"default", "docs"})


@pytest.mark.parametrize(("target", "name"), POINTS)
@pytest.mark.parametrize("nth", [1, 2])
def test_a_failing_delete_is_all_or_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, target: Any, name: str, nth: int
) -> None:
    registry = open_registry(data_dir)
    registry.create("docs", model="")
    registry.update_aliases([AddAlias("live", "docs")])
    with monkeypatch.context() as patch:
        failing_at(patch, target, name, nth)
        with contextlib.suppress(InjectedFaultError):
            registry.delete("docs")
    registry.close()
    names, aliases = state_after_reopen(data_dir)
    assert (names, aliases) in (
        ({"default", "docs"}, {"live": "docs"}),
        ({"default"}, {}),
    )


@pytest.mark.parametrize(("target", "name"), [(files.os, "replace"), (files, "fsync_dir")])
def test_a_failing_alias_update_is_all_or_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, target: Any, name: str
) -> None:
    registry = open_registry(data_dir)
    registry.create("v1", model="")
    registry.create("v2", model="")
    registry.update_aliases([AddAlias("live", "v1"), AddAlias("old", "v1")])
    with monkeypatch.context() as patch:
        failing_at(patch, target, name, 1)
        with pytest.raises(InjectedFaultError):
            registry.update_aliases([AddAlias("live", "v2"), RemoveAlias("old")])
    registry.close()
    _, aliases = state_after_reopen(data_dir)
    assert aliases in ({"live": "v1", "old": "v1"}, {"live": "v2"})


def test_leftovers_of_a_crash_are_removed_at_start(data_dir: Path) -> None:
    open_registry(data_dir).close()
    (data_dir / ".tmp-abc" / "index").mkdir(parents=True)
    (data_dir / "collections" / "orphan").mkdir()
    (data_dir / ".catalog.json.x.tmp").write_text("{")
    names, _ = state_after_reopen(data_dir)
    assert names == {"default"}
    assert not (data_dir / ".catalog.json.x.tmp").exists()
    catalog = load_catalog(data_dir)
    assert catalog is not None and set(catalog.collections) == {"default"}
    assert os.listdir(data_dir / "collections") == ["default"]
