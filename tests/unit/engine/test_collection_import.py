"""`import_index`: an index built offline becomes a data directory's collection, served with
its documents, schema and vectors; bad names, taken names, wrong models, locked directories
and interrupted copies are refused or undone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.engine import collection_import
from hybridsearch.engine.catalog import load_catalog
from hybridsearch.engine.collection_import import import_index
from hybridsearch.engine.data_dir import open_data_dir
from hybridsearch.errors import (
    AlreadyExistsError,
    IndexFormatError,
    IndexLockedError,
    InvalidArgumentError,
    SettingsError,
)
from hybridsearch.metadata.filter import Filter, Match
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.layout import SHARD_MANIFEST, shard_dir_name
from hybridsearch.storage.lock import WriterLock
from hybridsearch.types import Document, Query, RetrievalMode
from tests.collection_fakes import HASH_MODEL, HashCollectionFactory
from tests.fakes import HASH_ENCODER_INFO, HashEncoder, build_fake_index

SCHEMA = CollectionSchema((MetadataField("tenant", MetadataType.KEYWORD),))
DOCS = [
    Document("a", "", "the cat sat on the mat", {"tenant": "t1"}),
    Document("b", "", "a cat and a dog", {"tenant": "t2"}),
    Document("c", "", "dogs bark at night", {"tenant": "t1"}),
]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    return build_fake_index(tmp_path / "built", DOCS, schema=SCHEMA)


def search(data_dir: Path, name: str, query: Query) -> list[str]:
    registry = open_data_dir(data_dir, ServerSettings(), HashCollectionFactory())
    try:
        with registry.use(name) as served:
            return [hit.id for hit in served.searcher.search(query).hits]
    finally:
        registry.close()


def test_an_imported_index_is_served_with_its_vectors_schema_and_filters(
    built: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    entry = import_index(data, "papers", built, model=HASH_MODEL)
    assert (entry.model, entry.schema) == (HASH_MODEL, SCHEMA)
    catalog = load_catalog(data)
    assert catalog is not None and catalog.default == "papers"  # a new directory's first
    hybrid = Query(text="cat", top_k=10, mode=RetrievalMode.HYBRID)
    assert sorted(search(data, "papers", hybrid)) == ["a", "b", "c"]
    t1 = Filter(must=(Match("tenant", ("t1",)),))
    filtered = Query(text="cat", top_k=10, mode=RetrievalMode.SPARSE, filter=t1)
    assert search(data, "", filtered) == ["a"]  # the default collection, filtered


def test_a_second_import_joins_and_can_become_the_default(built: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    bm25 = build_fake_index(tmp_path / "bm25", DOCS, dense=False)
    import_index(data, "first", built, model=HASH_MODEL)
    import_index(data, "second", bm25, make_default=True)
    catalog = load_catalog(data)
    assert catalog is not None
    assert (sorted(catalog.collections), catalog.default) == (["first", "second"], "second")
    assert catalog.collections["second"].model == ""  # BM25-only picked for no vectors
    sparse = Query(text="dog", top_k=10, mode=RetrievalMode.SPARSE)
    assert sorted(search(data, "second", sparse)) == ["b", "c"]


def test_bad_taken_or_mismatched_imports_change_nothing(built: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_index(data, "papers", built, model=HASH_MODEL)
    before = (data / "catalog.json").read_bytes()
    with pytest.raises(AlreadyExistsError):
        import_index(data, "papers", built, model=HASH_MODEL)
    with pytest.raises(InvalidArgumentError, match="name"):
        import_index(data, "Bad!", built)
    with pytest.raises(InvalidArgumentError, match="has vectors"):
        import_index(data, "plain", built, model="")
    bm25 = build_fake_index(tmp_path / "bm25", DOCS, dense=False)
    with pytest.raises(InvalidArgumentError, match="no vectors"):
        import_index(data, "plain", bm25, model=HASH_MODEL)
    with pytest.raises(IndexFormatError):
        import_index(data, "plain", tmp_path / "missing")
    assert (data / "catalog.json").read_bytes() == before
    assert sorted(p.name for p in (data / "collections").iterdir()) == ["papers"]


@pytest.mark.parametrize("model", ["../../etc", "a/b", ".hidden", "my model", "x" * 129])
def test_a_model_name_that_is_no_directory_name_is_refused(
    built: Path, tmp_path: Path, model: str
) -> None:
    data = tmp_path / "data"
    import_index(data, "papers", built, model=HASH_MODEL)
    before = (data / "catalog.json").read_bytes()
    with pytest.raises(InvalidArgumentError, match=r"model: must be empty .* --models-dir"):
        import_index(data, "other", built, model=model)
    assert (data / "catalog.json").read_bytes() == before


def test_a_collection_whose_model_the_server_lacks_is_named_at_start(
    built: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    import_index(data, "plain", build_fake_index(tmp_path / "bm25", DOCS, dense=False))
    import_index(data, "other", built, model="my-model")  # a valid name, of no directory here
    with pytest.raises(SettingsError, match=r"collection 'other'.*'my-model'.*--models-dir"):
        open_data_dir(data, ServerSettings(read_only=True))  # no --models-dir
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(SettingsError, match=r"collection 'other' uses model 'my-model', but .*"):
        open_data_dir(data, ServerSettings(read_only=True, models_dir=models))


def test_a_catalog_naming_a_bad_model_or_name_is_refused_naming_it(
    built: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    import_index(data, "papers", built, model=HASH_MODEL)
    catalog = json.loads((data / "catalog.json").read_text())
    catalog["collections"]["papers"]["model"] = "../../etc"
    (data / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(IndexFormatError, match="collection 'papers': model must be empty"):
        load_catalog(data)
    catalog["collections"]["papers"]["model"] = HASH_MODEL
    catalog["aliases"] = {"../up": "papers"}
    (data / "catalog.json").write_text(json.dumps(catalog))
    with pytest.raises(IndexFormatError, match=r"alias '\.\./up': "):
        load_catalog(data)


def test_a_locked_data_directory_or_index_is_refused(built: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    serving = WriterLock(data)  # what a running server holds
    with pytest.raises(IndexLockedError):
        import_index(data, "papers", built, model=HASH_MODEL)
    serving.release()
    writing = WriterLock(built)  # a writer on the source index
    with pytest.raises(IndexLockedError):
        import_index(data, "papers", built, model=HASH_MODEL)
    writing.release()
    import_index(data, "papers", built, model=HASH_MODEL)


def test_an_interrupted_import_leaves_no_collection(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    import_index(data, "first", built, model=HASH_MODEL)

    def crash(*_: object) -> None:
        raise OSError("power cut before the catalog write")

    monkeypatch.setattr(collection_import.Catalog, "save", crash)
    with pytest.raises(OSError, match="power cut"):
        import_index(data, "second", built, model=HASH_MODEL)
    monkeypatch.undo()
    assert (data / "collections" / "second").is_dir()  # copied, never committed
    registry = open_data_dir(data, ServerSettings(), HashCollectionFactory())
    try:
        assert [c.name for c in registry.describe_all()] == ["first"]
    finally:
        registry.close()
    assert not (data / "collections" / "second").exists()  # removed as a leftover


def test_a_sharded_build_is_imported_whole_and_served_by_shard(tmp_path: Path) -> None:
    sharded = tmp_path / "sharded"
    build_sharded(
        DOCS, sharded, 2, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO, schema=SCHEMA
    )
    data = tmp_path / "data"
    import_index(data, "plain", build_fake_index(tmp_path / "plain", DOCS, schema=SCHEMA))
    locked = WriterLock(sharded / shard_dir_name(1))  # a writer on one shard
    with pytest.raises(IndexLockedError):
        import_index(data, "papers", sharded, model=HASH_MODEL)
    locked.release()
    assert not (data / "collections" / "papers").exists()
    entry = import_index(data, "papers", sharded, model=HASH_MODEL)
    assert (entry.shards, entry.schema, entry.model) == (2, SCHEMA, HASH_MODEL)
    catalog = load_catalog(data)
    assert catalog is not None and catalog.collections["papers"].shards == 2
    assert catalog.collections["plain"].shards == 0
    copied = data / "collections" / "papers"
    assert (copied / SHARD_MANIFEST).is_file() and (copied / shard_dir_name(1)).is_dir()
    assert not list(data.glob(".tmp-*"))
    registry = open_data_dir(data, ServerSettings(), HashCollectionFactory())
    try:
        assert {d.name: d.shard_count for d in registry.describe_all()} == {
            "papers": 2,
            "plain": 0,
        }
    finally:
        registry.close()
    hybrid = Query(text="cat", top_k=10, mode=RetrievalMode.HYBRID)
    assert sorted(search(data, "papers", hybrid)) == ["a", "b", "c"]
