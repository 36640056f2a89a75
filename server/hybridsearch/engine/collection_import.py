"""Importing a built index into a data directory as a collection, offline.

`hybridsearch index` builds one index directory; `import_index` copies such a directory into
``<data dir>/collections/<name>`` and commits it by the catalog write, like `CreateCollection`
does, so a collection can be built in bulk (and its vectors encoded) away from the server.

A sharded collection (``shards.json`` and its shard directories: `index --shards N`,
`shards split`) is imported whole, the same way; the catalog records its shard count.

Offline: it takes the data directory's writer lock (a serving writer holds it, so a running
server makes it fail) and the source index's (every shard's for a sharded one), so no writer
changes it while it is copied.
Crash-safe: the copy goes to ``.tmp-import-<name>`` (fsynced), is renamed into place, then the
catalog is saved; whatever is interrupted before the catalog write is removed at the next
open, and the collection is either fully there or absent.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from hybridsearch.engine.catalog import (
    COLLECTIONS_DIR,
    TMP_PREFIX,
    Catalog,
    CollectionEntry,
    check_name,
    load_catalog,
    model_problem,
    new_uid,
)
from hybridsearch.engine.data_dir import DEFAULT_MODEL, remove_leftovers
from hybridsearch.errors import AlreadyExistsError, InvalidArgumentError, echo
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.layout import is_sharded, load_shard_manifest
from hybridsearch.storage.builder import utc_now
from hybridsearch.storage.files import fsync_dir, fsync_file
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.lock import LOCK_FILE, WriterLock
from hybridsearch.storage.manifest import load_manifest


def import_index(
    data_dir: Path,
    name: str,
    source: Path,
    *,
    model: str | None = None,
    make_default: bool = False,
) -> CollectionEntry:
    """Copy the index (or sharded collection) ``source`` into ``data_dir`` as ``name``.

    ``model`` is the model directory name the server will query it with (``default``: its
    ``--model``); None picks ``default`` for an index with vectors and BM25-only otherwise.
    The first collection of a new data directory becomes its default; ``make_default`` makes
    this one the default of an existing one.

    Raises:
        InvalidArgumentError: a bad name, a model name that breaks the rule (`MODEL_RULE`:
            a directory name, never a path) or that does not fit the index's vectors.
        AlreadyExistsError: the name is taken by a collection or alias.
        IndexLockedError: a server (or another writer) holds the data directory or the index.
        IndexFormatError: ``source`` is not a readable index or sharded collection.
    """
    check_name(name, "name")
    # A clear error for a path that is no index, before any lock.
    shard_paths = load_shard_manifest(source).shard_paths(source) if is_sharded(source) else []
    for path in shard_paths or [source]:
        load_manifest(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(data_dir)
    try:
        source_locks: list[WriterLock] = []
        try:
            for path in shard_paths or [source]:
                source_locks.append(WriterLock(path))
            schema, has_vectors, dense_index = _describe(source, shard_paths)
            model = _model_for(model, has_vectors=has_vectors)
            catalog = load_catalog(data_dir)
            remove_leftovers(data_dir, catalog or Catalog(collections={}))
            if catalog is not None and catalog.taken(name):
                raise AlreadyExistsError(f"{echo(name)} is already a collection or alias")
            entry = CollectionEntry(
                name=name,
                schema=schema,
                model=model,
                dense_index=dense_index,
                created=utc_now(),
                shards=len(shard_paths),
                uid=new_uid(),
            )
            _copy_into_place(source, data_dir, entry)
        finally:
            for source_lock in source_locks:
                source_lock.release()
        if catalog is None:
            updated = Catalog(collections={name: entry}, default=name)
        else:
            updated = catalog.with_collection(entry)
            if make_default:
                updated = dataclasses.replace(updated, default=name)
        updated.save(data_dir)  # the commit point
        return entry
    finally:
        lock.release()


def _describe(source: Path, shard_paths: list[Path]) -> tuple[CollectionSchema, bool, str]:
    """(schema, whether it has vectors, dense index kind) of an index or sharded collection."""
    if not shard_paths:
        manifest = open_index(source).manifest
        return manifest.schema, manifest.has_vectors, manifest.dense_index
    sharded = load_shard_manifest(source)
    first = open_index(shard_paths[0]).manifest
    return sharded.schema, sharded.encoder is not None, first.dense_index


def _model_for(model: str | None, *, has_vectors: bool) -> str:
    if model is None:
        return DEFAULT_MODEL if has_vectors else ""
    problem = model_problem(model)  # as CreateCollection: a name under --models-dir
    if problem is not None:
        raise InvalidArgumentError.single("model", problem)
    if model and not has_vectors:
        raise InvalidArgumentError.single(
            "model", "the index has no vectors (BM25-only): import it without a model"
        )
    if not model and has_vectors:
        raise InvalidArgumentError.single(
            "model", "the index has vectors: name the model directory they come from"
        )
    return model


def _copy_into_place(source: Path, data_dir: Path, entry: CollectionEntry) -> None:
    """Copy ``source`` to a temp directory, fsync it, rename it to the collection's path."""
    staging = data_dir / f"{TMP_PREFIX}import-{entry.name}"
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(LOCK_FILE, f"{TMP_PREFIX}*"))
    for root, _, files in os.walk(staging):
        for file in files:
            fsync_file(Path(root) / file)
        fsync_dir(Path(root))
    target = data_dir / entry.relative_path
    (data_dir / COLLECTIONS_DIR).mkdir(exist_ok=True)
    staging.rename(target)
    fsync_dir(target.parent)
    fsync_dir(data_dir)
