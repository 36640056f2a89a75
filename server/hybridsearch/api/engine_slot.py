"""The engine a server serves, once loaded: what both servicers call."""

from __future__ import annotations

from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import FailedPreconditionError, UnavailableError


class EngineSlot:
    """Holds the engine once the index is loaded; calls before that get UNAVAILABLE."""

    def __init__(self) -> None:
        self._engine: HybridSearcher | None = None
        self._ingestor: Ingestor | None = None
        self._read_only_reason = ""

    def set(
        self,
        engine: HybridSearcher,
        ingestor: Ingestor | None = None,
        read_only_reason: str = "it serves searches only",
    ) -> None:
        """Publish the loaded engine (and its ingestor, when the index is writable; else why
        not, as a clause completing "this server is read-only: ...")."""
        self._ingestor = ingestor
        self._read_only_reason = read_only_reason
        self._engine = engine

    def get(self) -> HybridSearcher:
        """The engine, or UNAVAILABLE while the index is loading."""
        if self._engine is None:
            raise UnavailableError("the index is still loading; retry shortly")
        return self._engine

    @property
    def writable(self) -> bool:
        """Whether the loaded index accepts writes."""
        return self._ingestor is not None

    def get_ingestor(self) -> Ingestor:
        """The ingestor; UNAVAILABLE while loading, FAILED_PRECONDITION when read-only."""
        self.get()
        if self._ingestor is None:
            raise FailedPreconditionError(
                f"this server is read-only: {self._read_only_reason}; it accepts no writes"
            )
        return self._ingestor
