"""How the sharded front reaches its shards: `ShardGroup`, and the in-process one.

A group runs a `ShardWorker` method on shards: `fan_out` on many (a search: each shard
once, the failures of a shard whose replicas are all down collected as missing), `call` on
one (any live replica: a read), `write` on one (its writer replica). `LocalShardGroup` holds
every shard in this process (`serve --index SHARDED_DIR` without Ray; tests);
`sharding.ray_group.RayShardGroup` runs each shard's replicas as Ray actors.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hybridsearch.sharding.layout import ShardManifest
from hybridsearch.sharding.worker import ShardWorker

#: The monotonic-clock deadline of the request being served (None: none), set by the API
#: layer around engine work; a sharded group retries a dead replica only until then.
request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "request_deadline", default=None
)
#: Set by the server while it loads the index: once the event is set (SIGTERM, SIGINT), a
#: group still waiting for its replicas to start gives up (`ray_group.RayShardGroup`).
start_stopped: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "start_stopped", default=None
)


def missing_shards_message(missing: Sequence[int]) -> str:
    """What a caller is told when shards had no live replica (UNAVAILABLE)."""
    names = ", ".join(str(s) for s in missing)
    return (
        f"shard(s) {names} of this collection have no live replica (Ray restarts them); "
        "retry, or set allow_partial to get the other shards' hits"
    )


@dataclass(frozen=True, slots=True)
class FanOut:
    """Each answering shard's result, and the shards that could not answer (ascending)."""

    results: dict[int, Any]
    missing: tuple[int, ...] = ()


class ShardGroup(Protocol):
    """The shards of one collection, reachable by number.

    ``in_process``: the shards run in this process, so a request may carry what cannot be
    sent elsewhere (`worker.ArmsRequest.vector_of`).
    """

    in_process: bool

    @property
    def shard_count(self) -> int:
        """How many shards the collection has."""
        ...

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        """Run ``method(*args_of(shard))`` on every shard (or ``shards``) at once.

        Raises:
            UnavailableError: a shard has no live replica and ``allow_partial`` is False.
        """
        ...

    def call(self, shard: int, method: str, *args: Any) -> Any:
        """Run a read on one live replica of ``shard`` (UnavailableError: none)."""
        ...

    def write(self, shard: int, method: str, *args: Any) -> Any:
        """Run a write on the writer replica of ``shard`` (UnavailableError: none)."""
        ...

    def close(self) -> None:
        """Release the shards."""
        ...


class LocalShardGroup:
    """Every shard a `ShardWorker` in this process (no replicas, nothing goes missing)."""

    in_process = True

    def __init__(self, root: Path, manifest: ShardManifest, **worker_options: Any) -> None:
        self._workers = [ShardWorker(p, **worker_options) for p in manifest.shard_paths(root)]

    @property
    def shard_count(self) -> int:
        """How many shards the collection has."""
        return len(self._workers)

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        """Run ``method`` on each shard in turn."""
        numbers = range(self.shard_count) if shards is None else shards
        return FanOut({i: getattr(self._workers[i], method)(*args_of(i)) for i in numbers})

    def call(self, shard: int, method: str, *args: Any) -> Any:
        """Run a read on the shard."""
        return getattr(self._workers[shard], method)(*args)

    def write(self, shard: int, method: str, *args: Any) -> Any:
        """Run a write on the shard."""
        return getattr(self._workers[shard], method)(*args)

    def close(self) -> None:
        """Close every worker."""
        for worker in self._workers:
            worker.close()
