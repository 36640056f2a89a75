"""Shards served by Ray: each shard's ``R`` replicas are Ray actors (`ShardReplica`).

Why actors and not Ray Serve deployments: on the 2-core machine an awaited call to a plain
actor took p50 1.6 ms, through a Serve deployment handle 6.8 ms (bench/ray_hop.py; Serve adds
a router and a proxy hop). The front makes one call per shard per query, so that difference
is the whole of the Ray hop. Ray still places the actors (``SPREAD``: replicas of a shard on
different nodes when it can), restarts one that dies (``max_restarts=-1``) and runs a
replica's calls concurrently (``max_concurrency``).

A search is one call per shard, all submitted at once and collected with one ``ray.get``;
the request and the reply travel as bytes of the standard pickler (`pickled`), a reply's
candidate lists packed (`worker.ArmList`: int32 ordinals, float32 scores, ids as one string);
the only shard of a collection answers with the finished page instead (`ShardWorker.search`).

Failure policy (`RayShardGroup`): a call that fails because its replica died or is
restarting is retried at once on the shard's next replica, until the request's deadline
(`group.request_deadline`; `call_timeout_s` without one); a replica that failed is skipped
for `DOWN_FOR_S` seconds, then tried again (so a replica Ray restarted is back in use by
itself). When every replica of a shard has failed, the shard is missing: UNAVAILABLE, or
listed in the answer with ``allow_partial``. A domain error raised in a replica (a bad filter
value) is re-raised as itself.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from hybridsearch.errors import DeadlineExceededError, HybridSearchError, UnavailableError
from hybridsearch.sharding.group import FanOut, missing_shards_message, request_deadline
from hybridsearch.sharding.layout import ShardManifest
from hybridsearch.sharding.ray_runtime import RayRuntime
from hybridsearch.sharding.worker import ShardWorker

log = logging.getLogger(__name__)

DOWN_FOR_S = 1.0


class ShardReplica:
    """A Ray actor around a `ShardWorker` (its methods, plus `pid` for tests and benches)."""

    def __init__(self, path: str, options: dict[str, Any]) -> None:
        self._worker = ShardWorker(Path(path), **options)

    def pid(self) -> int:
        """This replica's process id."""
        return os.getpid()

    def ready(self) -> bool:
        """True once the shard is open."""
        return True

    def run(self, method: str, *args: Any) -> Any:
        """``ShardWorker.method(*args)``."""
        return getattr(self._worker, method)(*args)

    def run_pickled(self, method: str, args: bytes) -> bytes:
        """`run` with the arguments and the result pickled by the caller and here (see
        `pickled`)."""
        return pickled(getattr(self._worker, method)(*pickle.loads(args)))


def pickled(value: Any) -> bytes:
    """``value`` as the front and its replicas exchange it: pickled by the standard
    pickler, which Ray then sends as plain bytes. Ray's own serializer (cloudpickle, for
    anything but plain data) calls back into Python for every object of a shard's request
    and reply: about a tenth of the front's time per query on one shard (py-spy,
    bench/results/2026-12-02-ray-hop.md)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class _Shard:
    """One shard's replicas and which of them to try next."""

    def __init__(self, replicas: list[Any]) -> None:
        self.replicas = replicas
        self.down_until = [0.0] * len(replicas)
        self._next = itertools.count()
        self.writer: int | None = None

    def order(self) -> list[int]:
        """Replica positions to try: round-robin, ones that failed lately last."""
        start = next(self._next) % len(self.replicas)
        positions = [(start + i) % len(self.replicas) for i in range(len(self.replicas))]
        now = time.monotonic()
        return sorted(positions, key=lambda p: self.down_until[p] > now)


class RayShardGroup:
    """Every shard of a collection as ``replicas`` Ray actors (see the module docstring)."""

    in_process = False

    def __init__(
        self,
        root: Path,
        manifest: ShardManifest,
        *,
        replicas: int = 1,
        replica_cpus: float = 0.0,
        max_concurrency: int = 4,
        call_timeout_s: float = 30.0,
        runtime: RayRuntime | None = None,
        **worker_options: Any,
    ) -> None:
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1 (got {replicas})")
        self._call_timeout_s = call_timeout_s
        self._runtime = runtime
        self._lock = threading.Lock()
        actor = ray.remote(ShardReplica).options(
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=max_concurrency,
            num_cpus=replica_cpus,
            scheduling_strategy="SPREAD",
        )
        self._shards = [
            _Shard([actor.remote(str(path), worker_options) for _ in range(replicas)])
            for path in manifest.shard_paths(root)
        ]
        # Opening every shard (and learning each one's writer) before serving.
        for shard in self._shards:
            stats = ray.get([r.run.remote("stats") for r in shard.replicas])
            writers = [i for i, s in enumerate(stats) if s.writable]
            shard.writer = writers[0] if writers else None

    @property
    def shard_count(self) -> int:
        """How many shards the collection has."""
        return len(self._shards)

    def replica_pids(self, shard: int) -> list[int]:
        """The process ids of a shard's replicas (tests and benches kill them)."""
        return [ray.get(r.pid.remote()) for r in self._shards[shard].replicas]

    def _deadline(self) -> float:
        deadline = request_deadline.get()
        return deadline if deadline is not None else time.monotonic() + self._call_timeout_s

    def _submit(self, shard: int, position: int, method: str, args: tuple[Any, ...]) -> Any:
        replica = self._shards[shard].replicas[position]
        return replica.run_pickled.remote(method, pickled(args))

    def _await(
        self,
        shard: int,
        method: str,
        args: tuple[Any, ...],
        *,
        first: tuple[int, Any] | None,
        positions: list[int],
        deadline: float,
    ) -> tuple[bool, Any]:
        """(True, result) from the first replica that answers, or (False, why) when none."""
        state = self._shards[shard]
        tried = first
        remaining = list(positions)
        why = "no replica"
        while True:
            if tried is None:
                if not remaining:
                    return False, why
                position = remaining.pop(0)
                tried = (position, self._submit(shard, position, method, args))
            position, ref = tried
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise DeadlineExceededError(f"shard {shard} did not answer before the deadline")
            try:
                return True, pickle.loads(ray.get(ref, timeout=timeout))
            except GetTimeoutError:
                ray.cancel(ref)
                raise DeadlineExceededError(
                    f"shard {shard} did not answer before the deadline"
                ) from None
            except RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, HybridSearchError):
                    raise cause from None
                raise
            except RayActorError as exc:
                state.down_until[position] = time.monotonic() + DOWN_FOR_S
                why = f"{type(exc).__name__}"
                log.warning("shard %d replica %d failed (%s); trying another", shard, position, why)
                tried = None

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        """Run ``method`` on every shard at once; retry a dead replica's share elsewhere."""
        deadline = self._deadline()
        numbers = list(range(self.shard_count)) if shards is None else list(shards)
        started: dict[int, tuple[tuple[Any, ...], list[int], tuple[int, Any]]] = {}
        for shard in numbers:
            args = args_of(shard)
            order = self._shards[shard].order()
            started[shard] = (
                args,
                order[1:],
                (order[0], self._submit(shard, order[0], method, args)),
            )
        fast = self._get_all(
            {shard: first[1] for shard, (_, _, first) in started.items()}, deadline
        )
        if fast is not None:
            return FanOut(fast)
        results: dict[int, Any] = {}
        missing: list[int] = []
        for shard, (args, rest, first) in started.items():
            ok, value = self._await(
                shard, method, args, first=first, positions=rest, deadline=deadline
            )
            if ok:
                results[shard] = value
            else:
                missing.append(shard)
        if missing and not allow_partial:
            raise UnavailableError(missing_shards_message(missing))
        return FanOut(results, tuple(missing))

    @staticmethod
    def _get_all(refs: dict[int, Any], deadline: float) -> dict[int, Any] | None:
        """Each shard's result, in one ``ray.get``; None when a call failed or the deadline
        passed (`fan_out` then awaits each call alone, retrying or raising as `_await` does)."""
        try:
            values = ray.get(list(refs.values()), timeout=max(deadline - time.monotonic(), 0.0))
        except RayError:
            return None
        return {shard: pickle.loads(value) for shard, value in zip(refs, values, strict=True)}

    def call(self, shard: int, method: str, *args: Any) -> Any:
        """Run a read on one live replica of ``shard``."""
        ok, value = self._await(
            shard,
            method,
            args,
            first=None,
            positions=self._shards[shard].order(),
            deadline=self._deadline(),
        )
        if not ok:
            raise UnavailableError(missing_shards_message([shard]))
        return value

    def write(self, shard: int, method: str, *args: Any) -> Any:
        """Run a write on the writer replica of ``shard`` (found again after a restart)."""
        state = self._shards[shard]
        deadline = self._deadline()
        while True:
            if state.writer is None:
                self._find_writer(shard)
            if state.writer is None:
                raise UnavailableError(f"shard {shard} has no writer replica now; retry")
            ok, value = self._await(
                shard, method, args, first=None, positions=[state.writer], deadline=deadline
            )
            if ok:
                return value
            state.writer = None
            if time.monotonic() >= deadline:
                raise UnavailableError(f"shard {shard}'s writer replica is down; retry")
            time.sleep(0.1)

    def _find_writer(self, shard: int) -> None:
        state = self._shards[shard]
        for position, replica in enumerate(state.replicas):
            try:
                if ray.get(replica.run.remote("stats"), timeout=5.0).writable:
                    state.writer = position
                    return
            except (RayActorError, GetTimeoutError):
                continue

    def close(self) -> None:
        """Stop every replica and drop their handles (a handle released after
        ``ray.shutdown()`` aborts the process); then close ``runtime`` when given (the Ray
        that `load_sharded` started for this group)."""
        for shard in self._shards:
            for replica in shard.replicas:
                ray.kill(replica, no_restart=True)
            shard.replicas = []
        self._shards = []
        if self._runtime is not None:
            self._runtime.close()
