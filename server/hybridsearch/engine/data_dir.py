"""Serving a data directory (`serve --data-dir DIR`): open its catalog and every collection.

`open_data_dir` takes the directory's lock, removes what a crash left behind (directories the
catalog does not name, ``.tmp-*``), creates the ``default`` collection in a new directory, and
opens each collection with encoders shared by model (`SharedEncoders`).

A sharded collection (its directory has a ``shards.json``) is served through the sharded
front (`sharding.serving.open_shared`): its shards in this process, or with ``--ray`` as Ray
actors. Every sharded collection's shard group uses the one Ray connection the factory holds
(`RayRuntime`: a no-op when `serve --ray` connected already), closed after the collections.
Plain collections are always served in this process; without ``--ray`` Ray is never imported.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from hybridsearch.config import ServerSettings
from hybridsearch.dense.select import DenseIndexKind
from hybridsearch.engine.catalog import (
    CATALOG_FILE,
    COLLECTIONS_DIR,
    DEFAULT_COLLECTION,
    MODEL_DIR_NAME,
    TMP_PREFIX,
    Catalog,
    CollectionEntry,
    load_catalog,
)
from hybridsearch.engine.loader import (
    LoadedIndex,
    default_model_dir,
    encoder_info_of,
    load_index,
)
from hybridsearch.engine.registry import (
    DRAIN_TIMEOUT_S,
    CollectionFactory,
    CollectionRegistry,
    ServedCollection,
)
from hybridsearch.engine.shared_encoders import SharedEncoders
from hybridsearch.errors import IndexFormatError, InvalidArgumentError, SettingsError, echo
from hybridsearch.sharding.layout import is_sharded
from hybridsearch.storage.builder import build_index, utc_now
from hybridsearch.storage.lock import WriterLock
from hybridsearch.storage.manifest import load_manifest

if TYPE_CHECKING:
    from hybridsearch.sharding.ray_runtime import RayRuntime

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
#: Why a `--ray` server does not open a Lucene-backed collection: the JVM (Lucene's arm) and
#: Ray's driver must not share a process; both install crash-signal handlers, and a test
#: process that had both died of SIGSEGV in a JVM thread.
RAY_REFUSES_LUCENE = (
    "--ray / HYBRIDSEARCH_RAY: collection {name!r} has a Lucene BM25 index, whose Java "
    "runtime must not share a process with Ray; serve it from a server without --ray"
)


class ServerCollectionFactory:
    """Builds and opens collections with the server's settings and shared encoders.

    Model names: ``default`` is ``--model`` (or the embedded default model without one);
    any other is a directory under ``--models-dir``; empty: BM25-only.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        self.encoders = SharedEncoders(settings)
        self._ray: RayRuntime | None = None  # connected at the first sharded collection

    def model_dir(self, model: str) -> Path | None:
        """The model directory a collection's ``model`` names (None: BM25-only)."""
        if not model:
            return None
        if model == DEFAULT_MODEL:
            return self._settings.model or default_model_dir()
        models_dir = self._settings.models_dir
        if models_dir is None or not MODEL_DIR_NAME.fullmatch(model):
            raise SettingsError(
                f"no model directory for model {echo(model)}: start the server with "
                "--models-dir naming the directory that holds it"
            )
        return models_dir / model

    def known_models(self) -> list[str]:
        """The model names a new collection may use (besides empty, BM25-only)."""
        models_dir = self._settings.models_dir
        found = (
            sorted(p.name for p in models_dir.iterdir() if p.is_dir())
            if models_dir is not None and models_dir.is_dir()
            else []
        )
        return [DEFAULT_MODEL, *found]

    def check_model(self, model: str) -> None:
        """`InvalidArgumentError` on ``model`` unless the server knows that model."""
        if not model or model == DEFAULT_MODEL:
            return
        models_dir = self._settings.models_dir
        if (
            MODEL_DIR_NAME.fullmatch(model)
            and models_dir is not None
            and (models_dir / model).is_dir()
        ):
            return
        raise InvalidArgumentError.single(
            "model",
            f"no model directory named {echo(model)}; known: {', '.join(self.known_models())} "
            "(others go under the server's --models-dir), or empty for BM25-only",
        )

    def build_empty(self, out: Path, entry: CollectionEntry) -> None:
        """Build the empty index of ``entry`` at ``out`` (``entry.shards`` empty shards and
        their ``shards.json`` for a sharded one)."""
        from hybridsearch.encoders.config import load_config  # noqa: PLC0415
        from hybridsearch.sharding.build_local import build_sharded  # noqa: PLC0415

        model_dir = self.model_dir(entry.model)
        if model_dir is None:
            if entry.shards:
                build_sharded(iter(()), out, entry.shards, encoder=None, schema=entry.schema)
            else:
                build_index(iter(()), out, encoder=None, schema=entry.schema)
            return
        encoder, _ = self.encoders.get(model_dir, load_config(model_dir).max_length)
        info, dense = encoder_info_of(encoder), DenseIndexKind(entry.dense_index)
        if entry.shards:
            build_sharded(
                iter(()),
                out,
                entry.shards,
                encoder_info=info,
                schema=entry.schema,
                encoder=encoder,
                dense_index=dense,
            )
        else:
            build_index(
                iter(()),
                out,
                encoder=encoder,
                encoder_info=info,
                dense_index=dense,
                schema=entry.schema,
            )

    def open(self, path: Path, entry: CollectionEntry) -> LoadedIndex:
        """Open a collection's index for serving (its encoder shared by model); a sharded
        one through the sharded front (on Ray with ``--ray``)."""
        sharded = is_sharded(path)
        if not sharded and self._settings.ray and load_manifest(path).lucene is not None:
            raise SettingsError(RAY_REFUSES_LUCENE.format(name=entry.name))
        try:
            model_dir = self.model_dir(entry.model)
        except SettingsError as exc:
            raise SettingsError(f"collection {echo(entry.name)}: {exc}") from None
        if model_dir is not None and entry.model != DEFAULT_MODEL and not model_dir.is_dir():
            raise SettingsError(
                f"collection {echo(entry.name)} uses model {echo(entry.model)}, but "
                f"{model_dir} is not a directory: start the server with the --model or "
                "--models-dir that holds it"
            )
        settings = dataclasses.replace(self._settings, index=path, model=model_dir)
        if not sharded:
            return load_index(dataclasses.replace(settings, ray=""), self.encoders)
        from hybridsearch.sharding.serving import open_shared  # noqa: PLC0415 (a cycle)

        if settings.ray and self._ray is None:
            from hybridsearch.sharding.ray_runtime import RayRuntime  # noqa: PLC0415

            self._ray = RayRuntime(settings.ray)
        return open_shared(path, settings, self.encoders)

    def close(self) -> None:
        """Stop the shared encoders' dense arms; disconnect from Ray (after every
        collection's actors were stopped: the registry closes its collections first)."""
        self.encoders.close()
        if self._ray is not None:
            self._ray.close()
            self._ray = None


def open_data_dir(
    data_dir: Path,
    settings: ServerSettings,
    factory: CollectionFactory | None = None,
    *,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
) -> CollectionRegistry:
    """A registry serving every collection of ``data_dir`` (created when missing).

    ``drain_timeout_s``: how long a deletion waits for the calls using its collection.

    Raises:
        IndexLockedError: another process serves the directory (unless ``--read-only``).
        IndexFormatError: a damaged catalog, or (read-only) a directory with none.
    """
    factory = factory or ServerCollectionFactory(settings)
    lock = None
    if not settings.read_only:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(data_dir)
    try:
        catalog = load_catalog(data_dir)
        if catalog is None and settings.read_only:
            raise IndexFormatError(f"{data_dir} has no {CATALOG_FILE}; serve it writable once")
        if not settings.read_only:
            remove_leftovers(data_dir, catalog or Catalog(collections={}))
        if catalog is None:
            catalog = _create_default(data_dir, settings, factory)
        served = _open_all(data_dir, catalog, factory)
    except BaseException:
        factory.close()
        if lock is not None:
            lock.release()
        raise
    registry = CollectionRegistry(
        catalog,
        served,
        data_dir=data_dir,
        factory=factory,
        changes_refused="this server is read-only: it was started with --read-only"
        if settings.read_only
        else "",
        lock=lock,
        drain_timeout_s=drain_timeout_s,
    )
    if settings.read_only and settings.follow_interval_s > 0:
        # As each collection's index follows its writer's commits, the registry follows
        # its catalog: collections created and deleted, aliases moved.
        registry.start_following(settings.follow_interval_s)
    return registry


def remove_leftovers(data_dir: Path, catalog: Catalog) -> list[Path]:
    """Delete what an interrupted change left: ``.tmp-*``, unnamed collection directories and
    unfinished catalog writes. Returns what was removed."""
    removed: list[Path] = []
    for path in sorted(data_dir.iterdir()):
        if path.name.startswith(TMP_PREFIX) or path.name.startswith(f".{CATALOG_FILE}."):
            removed.append(path)
    collections = data_dir / COLLECTIONS_DIR
    if collections.is_dir():
        removed += [p for p in sorted(collections.iterdir()) if p.name not in catalog.collections]
    for path in removed:
        log.warning("removing %s: left by an interrupted change (no catalog entry)", path)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def _create_default(
    data_dir: Path, settings: ServerSettings, factory: CollectionFactory
) -> Catalog:
    """A new data directory's catalog: one empty ``default`` collection (with ``--model``
    when one is given, else BM25-only), committed by the first catalog write."""
    entry = CollectionEntry(
        name=DEFAULT_COLLECTION,
        model=DEFAULT_MODEL if settings.model is not None else "",
        created=utc_now(),
    )
    target = data_dir / entry.relative_path
    target.parent.mkdir(exist_ok=True)
    factory.build_empty(target, entry)
    catalog = Catalog(collections={entry.name: entry}, default=entry.name)
    catalog.save(data_dir)
    log.info("new data directory %s: created the empty collection %r", data_dir, entry.name)
    return catalog


def _open_all(
    data_dir: Path, catalog: Catalog, factory: CollectionFactory
) -> dict[str, ServedCollection]:
    served: dict[str, ServedCollection] = {}
    try:
        for name, entry in sorted(catalog.collections.items()):
            served[name] = ServedCollection(
                entry, factory.open(data_dir / entry.relative_path, entry)
            )
    except BaseException:
        for opened in served.values():
            opened.loaded.close()
        raise
    return served


def load_serving(settings: ServerSettings) -> LoadedIndex | CollectionRegistry:
    """What `serve` serves: the data directory's collections, or the single ``--index``."""
    if settings.data_dir is not None:
        return open_data_dir(settings.data_dir, settings)
    return load_index(settings)
