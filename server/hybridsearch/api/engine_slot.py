"""The collections a server serves, once loaded: what every servicer looks names up in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.registry import CollectionRegistry, ServedCollection
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.engine.serving import CollectionSearcher
from hybridsearch.errors import UnavailableError


class EngineSlot:
    """Holds the collection registry once loaded; calls before that get UNAVAILABLE."""

    def __init__(self) -> None:
        self._registry: CollectionRegistry | None = None

    def set_registry(self, registry: CollectionRegistry) -> None:
        """Publish the loaded collections."""
        self._registry = registry

    def set(
        self,
        engine: HybridSearcher,
        ingestor: Ingestor | None = None,
        read_only_reason: str = "it serves searches only",
    ) -> None:
        """Publish one loaded engine as the single, default collection (and its ingestor,
        when the index is writable; else why not, as a clause completing "this server is
        read-only: ...")."""
        loaded = LoadedIndex(engine, ingestor, read_only_reason=read_only_reason)
        self.set_registry(CollectionRegistry.single(loaded))

    @property
    def registry(self) -> CollectionRegistry:
        """The registry, or UNAVAILABLE while the collections are loading."""
        if self._registry is None:
            raise UnavailableError("the index is still loading; retry shortly")
        return self._registry

    def get(self) -> CollectionSearcher:
        """The default collection's engine, or UNAVAILABLE while loading."""
        return self.registry.default.searcher

    @contextmanager
    def use(self, name: str, field_path: str = "collection") -> Iterator[ServedCollection]:
        """The collection a request names (a name or an alias; empty: the default), held
        while the block runs (see `CollectionRegistry.use`)."""
        with self.registry.use(name, field_path) as served:
            yield served
