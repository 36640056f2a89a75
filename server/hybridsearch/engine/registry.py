"""The collections a server serves, by name and alias: lookups, create, delete, aliases.

`CollectionRegistry` is thread-safe. Lookups read one immutable state (the catalog and the
open collections), replaced whole by each change, so a search sees every alias action of an
`update_aliases` call or none of them. A lookup holds a reference on the collection until the
work is done (`use`): deleting a collection waits (up to ``drain_timeout_s``) for the
searches and writes already running on it before it closes it, so they finish on its data.
That wait runs after the change lock is released: a deletion never holds up other changes.
A call that keeps a collection across waits (an upsert stream between its messages) holds
it only while a batch is written (`hold`); a batch after the deletion gets NOT_FOUND.

Every change follows the same order, which makes it crash-safe: prepare the files, then write
``catalog.json`` (the commit point), then publish the new state; a crash before the catalog
write leaves files that the next start removes (see `catalog`).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hybridsearch.engine.catalog import (
    COLLECTIONS_DIR,
    TMP_PREFIX,
    Catalog,
    CollectionEntry,
    check_name,
    load_catalog,
    new_uid,
)
from hybridsearch.engine.follower import Poller
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.serving import CollectionSearcher, CollectionWriter, IndexView
from hybridsearch.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    HybridSearchError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
    echo,
)
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.group import request_deadline
from hybridsearch.sharding.layout import MAX_SHARDS
from hybridsearch.sharding.searcher import ShardedIndexView, ShardedSearcher
from hybridsearch.storage.builder import utc_now
from hybridsearch.storage.faults import storage_error
from hybridsearch.storage.files import fsync_dir
from hybridsearch.storage.lock import WriterLock

log = logging.getLogger(__name__)

MAX_ALIAS_ACTIONS = 100
DRAIN_TIMEOUT_S = 30.0
#: How long a listing or a metrics scrape waits, at most, for a sharded collection's shards
#: to report their numbers (within the caller's deadline); a shard that has not answered by
#: then is reported missing (`_partial_index`).
STATS_TIMEOUT_S = 2.0


class CollectionFactory(Protocol):
    """How a registry makes and opens the index of a collection (encoders, settings)."""

    def check_model(self, model: str) -> None:
        """Raise `InvalidArgumentError` on ``model`` unless it names a known model."""
        ...

    def build_empty(self, out: Path, entry: CollectionEntry) -> None:
        """Build the empty index of ``entry`` at ``out`` (which does not exist yet)."""
        ...

    def open(self, path: Path, entry: CollectionEntry) -> LoadedIndex:
        """Open the index of ``entry`` at ``path`` for serving."""
        ...

    def close(self) -> None:
        """Release what the factory shares between collections (encoders)."""
        ...


@dataclass(frozen=True, slots=True)
class AddAlias:
    """Point ``alias`` at ``collection`` (creating or moving it)."""

    alias: str
    collection: str


@dataclass(frozen=True, slots=True)
class RemoveAlias:
    """Delete ``alias``."""

    alias: str


AliasAction = AddAlias | RemoveAlias


@dataclass(eq=False, slots=True)
class ServedCollection:
    """An open collection: its catalog entry and its loaded index.

    ``refs`` counts the calls using it and ``retired`` says it was deleted (both guarded by
    the registry's lock).
    """

    entry: CollectionEntry
    loaded: LoadedIndex
    refs: int = 0
    retired: bool = False

    @property
    def name(self) -> str:
        """The collection's own name."""
        return self.entry.name

    @property
    def searcher(self) -> CollectionSearcher:
        """Its searcher."""
        return self.loaded.searcher

    @property
    def writable(self) -> bool:
        """Whether it accepts writes."""
        return self.loaded.ingestor is not None

    def ingestor(self) -> CollectionWriter:
        """Its ingestor; FAILED_PRECONDITION when it is read-only."""
        if self.loaded.ingestor is None:
            reason = self.loaded.read_only_reason or "it serves searches only"
            raise FailedPreconditionError(
                f"this server is read-only: {reason}; it accepts no writes"
            )
        return self.loaded.ingestor


@dataclass(frozen=True, slots=True)
class CollectionDescription:
    """What `describe` says about a collection (GetCollection, ListCollections)."""

    name: str
    schema: CollectionSchema
    document_count: int
    size_bytes: int
    encoder_model_id: str
    dense_index: str
    generation: int
    aliases: list[str]
    default: bool
    created: str
    shard_count: int = 0  # 0: one index directory
    #: Shards with no live replica when described (their numbers left out of the counts).
    missing_shards: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CollectionCounts:
    """What a metrics scrape reports of the served collections (`CollectionRegistry.counts`)."""

    live_documents: int = 0
    missing_shards: int = 0


@dataclass(frozen=True, slots=True)
class _State:
    catalog: Catalog
    served: Mapping[str, ServedCollection] = field(default_factory=dict)


class CollectionRegistry:
    """Resolves names and aliases to open collections; creates, deletes and aliases them.

    ``changes_refused``: why this registry makes no changes (a single ``--index``, or
    ``--read-only``), completing "FAILED_PRECONDITION: ..."; empty when it does.
    """

    def __init__(
        self,
        catalog: Catalog,
        served: Mapping[str, ServedCollection],
        *,
        data_dir: Path | None = None,
        factory: CollectionFactory | None = None,
        changes_refused: str = "",
        lock: WriterLock | None = None,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ) -> None:
        self._state = _State(catalog, dict(served))
        self._data_dir = data_dir
        self._factory = factory
        self._changes_refused = changes_refused
        self._lock = lock
        self._drain_timeout_s = drain_timeout_s
        self._refs = threading.Condition()  # guards _state swaps, refs counts, _retiring
        self._changing = threading.Lock()  # one change at a time
        self._retiring: set[str] = set()  # deleted, still draining or being removed
        self._follower: Poller | None = None
        # A follower's deleted collections, each closed on its own thread once its calls end
        # (the follower goes on following meanwhile); `close` waits for them.
        self._closing_threads: list[threading.Thread] = []

    @classmethod
    def single(cls, loaded: LoadedIndex, name: str = "default") -> CollectionRegistry:
        """A registry serving one index (``serve --index``) as its only, default collection."""
        manifest = loaded.searcher.index.manifest
        entry = CollectionEntry(
            name=name,
            model="default" if manifest.encoder is not None else "",
            dense_index=manifest.dense_index,
            created=manifest.created_at,
            schema=manifest.schema,
        )
        catalog = Catalog(collections={name: entry}, default=name)
        return cls(
            catalog,
            {name: ServedCollection(entry, loaded)},
            changes_refused=(
                "this server serves one index (--index); start it with --data-dir to create, "
                "delete or alias collections"
            ),
        )

    # -- lookups ---------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog now served."""
        return self._state.catalog

    @property
    def default(self) -> ServedCollection:
        """The default collection."""
        state = self._state
        return state.served[state.catalog.default]

    def served(self) -> list[ServedCollection]:
        """Every open collection, in name order."""
        state = self._state
        return [state.served[name] for name in sorted(state.served)]

    @contextmanager
    def use(self, name: str, field_path: str = "collection") -> Iterator[ServedCollection]:
        """The collection ``name`` (a name or an alias; empty: the default), held until the
        block ends: a deletion waits for it before closing the collection.

        Raises:
            InvalidArgumentError: ``name`` breaks the name rule (on ``field_path``).
            NotFoundError: no collection or alias has that name (or, raised in the block,
                the collection was deleted and closed under it: see `hold`).
        """
        if name:
            check_name(name, field_path)
        with self._refs:
            state = self._state
            target = state.catalog.resolve(name)
            if target is None:
                raise NotFoundError(f"no collection or alias named {echo(name)}")
            served = state.served[target]
            served.refs += 1
        with self._held(served):
            yield served

    @contextmanager
    def hold(self, served: ServedCollection) -> Iterator[ServedCollection]:
        """Hold ``served`` again (found earlier by `use`) until the block ends: a call that
        keeps a collection across waits (an upsert stream between its messages) holds it
        only while it works, so a deletion does not wait for an idle client.

        Raises:
            NotFoundError: the collection was deleted meanwhile, or (raised in the block) it
                was closed under the block because its deletion stopped waiting.
        """
        with self._refs:
            if served.retired:
                raise NotFoundError(f"collection {echo(served.name)} was deleted")
            served.refs += 1
        with self._held(served):
            yield served

    @contextmanager
    def _held(self, served: ServedCollection) -> Iterator[None]:
        """Release a reference taken on ``served`` when the block ends; a failure of a
        collection deleted meanwhile (its writer closed after ``drain_timeout_s``) reads as
        NOT_FOUND naming it, not as an internal error."""
        try:
            yield
        except Exception as exc:
            if served.retired and not isinstance(exc, HybridSearchError):
                raise NotFoundError(
                    f"collection {echo(served.name)} was deleted while the call used it"
                ) from exc
            raise
        finally:
            with self._refs:
                served.refs -= 1
                if served.refs == 0:
                    self._refs.notify_all()

    def describe(self, name: str, field_path: str = "name") -> CollectionDescription:
        """The collection ``name`` (a name or an alias; empty: the default) described."""
        with self.use(name, field_path) as served:
            return self._description(served, self._state.catalog)

    def describe_all(self) -> list[CollectionDescription]:
        """Every collection described, in name order."""
        state = self._state
        return [self._description(s, state.catalog) for s in self.served()]

    def counts(self) -> CollectionCounts:
        """Live documents of every collection as of its last commit, and shards with no live
        replica now (left out of the documents): one look at each collection, so a sharded
        one's shards are asked once."""
        documents = missing = 0
        for served in self.served():
            index = _partial_index(served)
            documents += index.manifest.document_count
            if isinstance(index, ShardedIndexView):
                missing += len(index.missing_shards)
        return CollectionCounts(documents, missing)

    @staticmethod
    def _description(served: ServedCollection, catalog: Catalog) -> CollectionDescription:
        index = _partial_index(served)
        manifest = index.manifest
        return CollectionDescription(
            name=served.name,
            schema=manifest.schema,  # the index's own record (the catalog's is a copy)
            document_count=manifest.document_count,
            size_bytes=index.size_bytes,
            encoder_model_id=manifest.encoder.model_id if manifest.encoder is not None else "",
            dense_index=manifest.dense_index,
            generation=manifest.generation,
            aliases=catalog.aliases_of(served.name),
            default=served.name == catalog.default,
            created=served.entry.created,
            shard_count=(
                served.searcher.shard_count if isinstance(served.searcher, ShardedSearcher) else 0
            ),
            missing_shards=index.missing_shards if isinstance(index, ShardedIndexView) else (),
        )

    # -- changes ---------------------------------------------------------------------------

    @contextmanager
    def _change_lock(self) -> Iterator[None]:
        """The change lock (one change at a time); a change whose caller's deadline
        (`request_deadline`) passed while it waited for the change before it is not started."""
        with self._changing:
            deadline = request_deadline.get()
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceededError(
                    "the deadline passed before the change started; it was not applied"
                )
            yield

    def _check_changes_allowed(self) -> tuple[Path, CollectionFactory]:
        if self._changes_refused or self._data_dir is None or self._factory is None:
            raise FailedPreconditionError(self._changes_refused or "collections are fixed")
        return self._data_dir, self._factory

    def _publish(self, catalog: Catalog, served: Mapping[str, ServedCollection]) -> None:
        with self._refs:
            self._state = _State(catalog, dict(served))

    def _commit(
        self,
        data_dir: Path,
        catalog: Catalog,
        served: Mapping[str, ServedCollection],
        action: str,
    ) -> None:
        """Write ``catalog`` (the commit point), then serve it with ``served``.

        A failure after the catalog's rename (its directory fsync) still leaves the new
        catalog on disk: then it is served too, so the server serves what a restart would,
        and the error is raised all the same.
        """
        try:
            with _storage_errors(action):
                catalog.save(data_dir)
        except BaseException:
            if _catalog_on_disk(data_dir) == catalog:
                self._publish(catalog, served)
            raise
        self._publish(catalog, served)

    def create(
        self,
        name: str,
        *,
        schema: CollectionSchema | None = None,
        model: str = "",
        dense_index: str = "exact",
        shards: int = 0,
    ) -> CollectionDescription:
        """Create an empty collection; it is served (and durable) when this returns.

        ``shards``: 0 for one index directory, N for a sharded collection of N shards.

        Raises:
            InvalidArgumentError: a bad name, an unknown model or a shard count out of range.
            AlreadyExistsError: ``name`` is a collection's or an alias.
            FailedPreconditionError: this registry makes no changes.
        """
        check_name(name, "name")
        if not 0 <= shards <= MAX_SHARDS:
            raise InvalidArgumentError.single(
                "shards",
                f"must be 0 (one index directory) or a shard count in [1, {MAX_SHARDS}] "
                f"(got {shards})",
            )
        data_dir, factory = self._check_changes_allowed()
        with self._change_lock():
            state = self._state
            if state.catalog.taken(name):
                kind = "a collection" if name in state.catalog.collections else "an alias"
                raise AlreadyExistsError(f"{echo(name)} is already {kind}")
            with self._refs:
                retiring = name in self._retiring
            if retiring:  # its directory is still there, and its writer maybe open
                raise UnavailableError(
                    f"the collection {echo(name)} is still being deleted (the calls using it "
                    "are finishing); retry shortly"
                )
            factory.check_model(model)
            entry = CollectionEntry(
                name=name,
                schema=schema or CollectionSchema(),
                model=model,
                dense_index=dense_index if model else "exact",
                created=utc_now(),
                shards=shards,
                uid=new_uid(),
            )
            target = data_dir / entry.relative_path
            with _storage_errors("creating the collection"):
                _build_into_place(data_dir, target, entry, factory)
            catalog = state.catalog.with_collection(entry)
            try:
                loaded = factory.open(target, entry)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            served = ServedCollection(entry, loaded)
            try:
                self._commit(
                    data_dir, catalog, {**state.served, name: served}, "creating the collection"
                )
            except BaseException:
                if self._state.catalog is not catalog:  # not committed: undo
                    loaded.close()
                    shutil.rmtree(target, ignore_errors=True)
                raise
            log.info("created collection %s (model %r, shards: %d)", name, model, shards)
            return self._description(served, catalog)

    def delete(self, name: str) -> list[str]:
        """Delete the collection ``name`` and its aliases; returns the aliases removed.

        Searches and writes already running on it finish first (up to ``drain_timeout_s``),
        while other changes go on; a write after the deletion gets NOT_FOUND.

        Raises:
            InvalidArgumentError: a bad name, or an alias's.
            NotFoundError: no collection has that name.
            FailedPreconditionError: the default collection, or this registry makes no changes.
        """
        check_name(name, "name")
        data_dir, _ = self._check_changes_allowed()
        retired: ServedCollection | None = None
        try:
            with self._change_lock():
                state = self._state
                catalog = state.catalog
                if name in catalog.aliases:
                    raise InvalidArgumentError.single(
                        "name",
                        f"{echo(name)} is an alias (of {echo(catalog.aliases[name])}); delete "
                        "a collection by its own name",
                    )
                if name not in catalog.collections:
                    raise NotFoundError(f"no collection named {echo(name)}")
                if name == catalog.default:
                    raise FailedPreconditionError(
                        f"{echo(name)} is the server's default collection; it cannot be deleted"
                    )
                removed = catalog.aliases_of(name)
                remaining = catalog.without_collection(name)
                served = state.served[name]
                others = {n: s for n, s in state.served.items() if n != name}
                try:
                    self._commit(data_dir, remaining, others, "deleting the collection")
                finally:
                    if self._state.catalog is remaining:  # committed (also if an fsync failed)
                        with self._refs:
                            served.retired = True  # a later `hold` of it gets NOT_FOUND
                            self._retiring.add(name)
                        retired = served
        finally:
            # Outside the change lock: other changes go on while its calls finish.
            if retired is not None:
                try:
                    self._retire(retired, data_dir / retired.entry.relative_path, data_dir)
                finally:
                    with self._refs:
                        self._retiring.discard(name)
        log.info("deleted collection %s (aliases removed: %s)", name, removed or "none")
        return removed

    def _retire(self, served: ServedCollection, path: Path | None, data_dir: Path) -> None:
        """Wait for the calls using ``served``, close it, remove its directory (unless
        ``path`` is None: a read-only follower's collection, deleted by the writer).

        Closing waits for a commit in progress (the writer's lock), so one is never cut
        short even when the wait gives up; the calls after that get NOT_FOUND (`hold`).
        """
        with self._refs:
            drained = self._refs.wait_for(lambda: served.refs == 0, self._drain_timeout_s)
        if not drained:
            log.warning(
                "collection %s: %d calls still running after %g s; closing it anyway",
                served.name,
                served.refs,
                self._drain_timeout_s,
            )
        served.loaded.close()
        if path is not None:
            _remove_dir(path, data_dir)

    def update_aliases(self, actions: Sequence[AliasAction]) -> dict[str, str]:
        """Apply ``actions`` in order, atomically; returns every alias → collection after.

        Raises:
            InvalidArgumentError: no actions, too many, a bad name, an alias that is a
                collection's name or that would name another alias (nothing is applied).
            NotFoundError: an action names an unknown collection or removes an unknown alias.
            FailedPreconditionError: this registry makes no changes.
        """
        if not 1 <= len(actions) <= MAX_ALIAS_ACTIONS:
            raise InvalidArgumentError.single(
                "actions", f"must hold 1 to {MAX_ALIAS_ACTIONS} actions (got {len(actions)})"
            )
        for i, action in enumerate(actions):
            kind = "add" if isinstance(action, AddAlias) else "remove"
            check_name(action.alias, f"actions[{i}].{kind}.alias")
            if isinstance(action, AddAlias):
                check_name(action.collection, f"actions[{i}].add.collection")
        data_dir, _ = self._check_changes_allowed()
        with self._change_lock():
            state = self._state
            aliases = _apply(state.catalog, actions)
            catalog = state.catalog.with_aliases(aliases)
            if catalog != state.catalog:
                self._commit(data_dir, catalog, state.served, "updating the aliases")
            return dict(sorted(aliases.items()))

    def follow_catalog(self) -> bool:
        """Serve the data directory's catalog as another process (its writer) changed it: open
        the collections it added (or deleted and created again), retire those it deleted, take
        its aliases, all published at once. Whether anything changed. A read-only server
        calls it every ``--follow-interval-s`` (`start_following`).

        Raises:
            IndexFormatError: the catalog is unreadable (nothing changes; the next call
                tries again), and whatever opening a new collection raised (the same).
        """
        if self._data_dir is None or self._factory is None:
            return False
        data_dir, factory = self._data_dir, self._factory
        with self._changing:
            state = self._state
            catalog = load_catalog(data_dir)
            if catalog is None or catalog == state.catalog:
                return False
            kept = {
                name: served
                for name, served in state.served.items()
                if catalog.collections.get(name) == served.entry
            }
            opened: dict[str, ServedCollection] = {}
            try:
                for name, entry in sorted(catalog.collections.items()):
                    if name not in kept:
                        loaded = factory.open(data_dir / entry.relative_path, entry)
                        opened[name] = ServedCollection(entry, loaded)
            except BaseException:
                for served in opened.values():
                    served.loaded.close()
                raise
            gone = [served for name, served in state.served.items() if name not in kept]
            with self._refs:
                self._state = _State(catalog, {**kept, **opened})
                for served in gone:
                    served.retired = True
        for name in opened:
            log.info("following %s: serving collection %s", data_dir, name)
        for served in gone:
            log.info("following %s: collection %s was deleted; closing it", data_dir, served.name)
            # Its calls may run for up to drain_timeout_s: waiting for them here would stop
            # following (and retiring the others) meanwhile.
            closing = threading.Thread(
                target=self._retire,
                args=(served, None, data_dir),
                name=f"close-{served.name}",
                daemon=True,
            )
            closing.start()
            self._closing_threads = [t for t in self._closing_threads if t.is_alive()]
            self._closing_threads.append(closing)
        return True

    def start_following(self, interval_s: float) -> None:
        """Call `follow_catalog` every ``interval_s`` seconds until `close`."""
        assert self._data_dir is not None
        self._follower = Poller(
            f"the catalog of {self._data_dir}",
            self.follow_catalog,
            interval_s,
            thread_name="catalog-follower",
        )

    def close(self) -> None:
        """Close every collection and the shared encoders; release the data directory."""
        if self._follower is not None:
            self._follower.close()
        for closing in self._closing_threads:
            closing.join()
        for served in self.served():
            served.loaded.close()
        if self._factory is not None:
            self._factory.close()
        if self._lock is not None:
            self._lock.release()


def _partial_index(served: ServedCollection) -> IndexView:
    """A served collection's index as of now; of a sharded one, what its shards that
    answered within `STATS_TIMEOUT_S` (and the caller's deadline) say: a `ShardedIndexView`
    naming the others, never UNAVAILABLE. A listing, or a metrics scrape, still answers
    while Ray restarts a shard or a replica hangs."""
    searcher = served.searcher
    if not isinstance(searcher, ShardedSearcher):
        return searcher.index
    caller = request_deadline.get()
    bound = time.monotonic() + STATS_TIMEOUT_S
    token = request_deadline.set(bound if caller is None else min(caller, bound))
    try:
        return searcher.index_view(allow_partial=True)
    finally:
        request_deadline.reset(token)


def _catalog_on_disk(data_dir: Path) -> Catalog | None:
    """The catalog as a restart would read it (None when unreadable)."""
    try:
        return load_catalog(data_dir)
    except HybridSearchError:
        return None


def _apply(catalog: Catalog, actions: Sequence[AliasAction]) -> dict[str, str]:
    aliases = dict(catalog.aliases)
    for i, action in enumerate(actions):
        if isinstance(action, RemoveAlias):
            if action.alias not in aliases:
                raise NotFoundError(
                    f"actions[{i}].remove.alias: no alias named {echo(action.alias)}"
                )
            del aliases[action.alias]
            continue
        if action.alias in catalog.collections:
            raise InvalidArgumentError.single(
                f"actions[{i}].add.alias",
                f"{echo(action.alias)} is a collection's name (names are shared with aliases)",
            )
        if action.collection not in catalog.collections:
            if action.collection in aliases:
                raise InvalidArgumentError.single(
                    f"actions[{i}].add.collection",
                    f"{echo(action.collection)} is an alias; an alias names a collection",
                )
            raise NotFoundError(
                f"actions[{i}].add.collection: no collection named {echo(action.collection)}"
            )
        aliases[action.alias] = action.collection
    return aliases


def _build_into_place(
    data_dir: Path, target: Path, entry: CollectionEntry, factory: CollectionFactory
) -> None:
    """Build the empty index in a ``.tmp-*`` directory, then rename it to ``target``."""
    tmp = data_dir / f"{TMP_PREFIX}{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        factory.build_empty(tmp / "index", entry)
        # An old directory here is one no catalog names (a crash's leftover): not served.
        if target.exists():
            _remove_dir(target, data_dir)
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp / "index", target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_dir(path: Path, data_dir: Path) -> None:
    """Move ``path`` out of ``collections/`` (one rename), then delete it: a crash midway
    leaves a ``.tmp-*`` directory (removed at the next start), never half a collection."""
    trash = data_dir / f"{TMP_PREFIX}{secrets.token_hex(6)}"
    try:
        os.replace(path, trash)
    except FileNotFoundError:
        return
    fsync_dir(data_dir / COLLECTIONS_DIR)
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Turn a disk-full or I/O fault into its domain error (RESOURCE_EXHAUSTED/UNAVAILABLE)."""
    try:
        yield
    except OSError as exc:
        mapped = storage_error(exc, action)
        if mapped is None:
            raise
        raise mapped from exc
