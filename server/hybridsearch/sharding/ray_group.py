"""Shards served by Ray: each shard's ``R`` replicas are Ray actors (`ShardReplica`).

Why actors and not Ray Serve deployments: on the 2-core machine an awaited call to a plain
actor took p50 1.6 ms, through a Serve deployment handle 6.8 ms (bench/ray_hop.py; Serve adds
a router and a proxy hop). The front makes one call per shard per query, so that difference
was the whole of the Ray hop (now shorter still: the calls skip Ray, below). Ray places the
actors (``SPREAD``: replicas of a shard on different nodes when it can), restarts one that
dies (``max_restarts=-1``) and runs a replica's Ray calls concurrently (``max_concurrency``).

A search is one call per shard, all sent at once. How a call travels (``transport``):

- ``direct`` (the default): over a TCP connection the front holds to the replica
  (`replica_line`: authenticated by a random key of the group's, which the replica gets
  through Ray). Ray still places, restarts and health-checks the replicas and tells the
  front where each one listens; only the query path skips Ray's task machinery, which cost
  p50 about 2 ms per call on 2 cores (bench/ray_hop.py, bench/results/*-ray-serve.md);
- ``ray``: a Ray actor task per call (``run_pickled``), collected with one ``ray.get``; for
  clusters whose nodes cannot reach each other on the ports replicas pick.

Either way the request and the reply travel as bytes of the standard pickler (`pickled`), a
reply's candidate lists packed (`worker.ArmList`: int32 ordinals, float32 scores, ids as one
string); the only shard of a collection answers with the finished page instead
(`ShardWorker.search`).

Failure policy (`RayShardGroup`): a read that fails because its replica died or is
restarting (its connection ends or is refused, or Ray reports the actor dead) is retried at
once on the shard's next replica, until the request's deadline
(`group.request_deadline`; `call_timeout_s` without one); one that failed on what the front
held (an idle connection, or an address a restart made stale) is tried once more on that
replica, after the others, on a new connection to where Ray says it listens now (with one
replica, the first read after a restart is answered). A read's attempt has its share of the
time left (that time divided among the replicas still to try, at least `MIN_ATTEMPT_S`): a
replica that has not answered by then (hung, or its node cut off) is marked down and the next
one asked too, the first still awaited. A replica that failed is skipped for `DOWN_FOR_S`
seconds, then tried again (so a replica Ray restarted is back in use by itself). When every
replica of a shard has failed, the shard is missing: UNAVAILABLE, or listed in the answer
with ``allow_partial``. With ``allow_partial`` a shard is waited for only until
`PARTIAL_SHARE` of the time left when the fan-out starts has passed; one that has not answered
by then (its replicas hung, or their node cut off) is missing too, so the other shards' hits
still reach the caller before its deadline. A replica that failed is asked where it listens
in the background (`_address_of`: Ray holds the question while it restarts it): while
another replica can be tried the front does not wait for that answer. A write goes to the
writer replica alone, with the whole deadline, and is sent again only when it was not sent
(the replica could not be reached); once the replica had it, a failure is UNAVAILABLE and a
timeout DEADLINE_EXCEEDED, since it may have been applied. A domain error raised in a
replica (a bad filter value) is re-raised as itself.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import pickle
import select
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from hybridsearch.errors import (
    DeadlineExceededError,
    HybridSearchError,
    SettingsError,
    SetupError,
    UnavailableError,
)
from hybridsearch.serving_gc import tune_collector_for_serving
from hybridsearch.sharding.group import (
    FanOut,
    missing_shards_message,
    request_deadline,
    start_stopped,
)
from hybridsearch.sharding.layout import ShardManifest
from hybridsearch.sharding.ray_runtime import RayRuntime
from hybridsearch.sharding.replica_line import Address, ReplicaLine, ReplicaListener, new_key
from hybridsearch.sharding.worker import ShardWorker

log = logging.getLogger(__name__)

DOWN_FOR_S = 1.0
#: How long the front waits for a replica to say where it listens (Ray holds the question
#: while it restarts the replica) before it tries the shard's next replica.
ADDRESS_TIMEOUT_S = 2.0
#: A read's attempt on one replica has the time left divided among the replicas still to
#: try, but never less than this (the last one has all of it): a replica that does not
#: answer in its share (hung, or its node cut off) is marked down and the next one is
#: asked too, the first still awaited.
MIN_ATTEMPT_S = 0.5
#: How long the front waits for a replica to say where it listens when the shard has
#: another replica left to try (the question stays asked: a later attempt takes the answer).
ADDRESS_QUICK_S = 0.05
#: With ``allow_partial`` a fan-out waits for a shard until this share of the time left
#: when it starts has passed; a shard that has not answered by then is missing (the rest
#: of the time is for merging the others' answers before the caller's deadline).
PARTIAL_SHARE = 0.8
#: How long `RayShardGroup` waits, at most, for every replica to be placed and open its
#: shard before it gives up (naming what the replicas reserve and what the cluster has).
START_TIMEOUT_S = 300.0
#: How often a start that waits for replicas logs what it waits for.
START_LOG_EVERY_S = 10.0
#: How long the front waits for a writer replica to say it is one, at most.
FIND_WRITER_TIMEOUT_S = 5.0
TRANSPORTS = ("direct", "ray")


class ShardReplica:
    """A Ray actor around a `ShardWorker` (its methods, plus `pid` for tests and benches);
    with ``key``, it also answers the front's calls on a direct line (`replica_line`)."""

    def __init__(self, path: str, options: dict[str, Any], key: bytes | None = None) -> None:
        tune_collector_for_serving()  # this process serves the shard, as a server does
        self._worker = ShardWorker(Path(path), **options)
        self._listener: ReplicaListener | None = None
        if key is not None:
            host: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
            self._listener = ReplicaListener(host, key, self._answer)

    def pid(self) -> int:
        """This replica's process id."""
        return os.getpid()

    def ready(self) -> bool:
        """True once the shard is open."""
        return True

    def address(self) -> Address | None:
        """Where this replica answers on a direct line (None: it does not)."""
        return None if self._listener is None else self._listener.address

    def run(self, method: str, *args: Any) -> Any:
        """``ShardWorker.method(*args)``."""
        return getattr(self._worker, method)(*args)

    def _answer(self, method: str, args: tuple[Any, ...]) -> Any:
        return self.run(method, *args)

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


def _late(shard: int) -> DeadlineExceededError:
    return DeadlineExceededError(f"shard {shard} did not answer before the deadline")


class _ReplicaDownError(Exception):
    """A replica cannot answer (dead, restarting, unreachable): try the shard's next one.

    ``sent``: the request may have reached the replica (it failed while awaiting the reply),
    so a write may have been applied. ``reused``: the attempt used what the front held (an
    idle connection or a known address), which a restart makes stale.
    """

    def __init__(self, why: str, *, sent: bool = False, reused: bool = False) -> None:
        super().__init__(why)
        self.sent = sent
        self.reused = reused


class _AttemptTimeoutError(Exception):
    """An attempt's share of the time ran out (`_await` decides: deadline, or next replica)."""


@dataclass(slots=True)
class _Call:
    """A call in flight: the replica's position, the socket (direct) or Ray object ref it
    awaits, when its share of the time ends, and whether it used what the front held."""

    position: int
    pending: Any
    until: float
    reused: bool


class _Shard:
    """One shard's replicas, the front's lines to them, and which of them to try next."""

    def __init__(self, replicas: list[Any], key: bytes | None) -> None:
        self.replicas = replicas
        self.lines = [ReplicaLine(key) for _ in replicas] if key is not None else []
        self.down_until = [0.0] * len(replicas)
        #: Each replica's pending question "where do you listen?" (a Ray object ref), kept
        #: across attempts while Ray restarts it (`RayShardGroup._address_of`).
        self.asking: list[Any | None] = [None] * len(replicas)
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
        transport: str = "direct",
        runtime: RayRuntime | None = None,
        cluster_fixed: bool = False,
        start_timeout_s: float = START_TIMEOUT_S,
        **worker_options: Any,
    ) -> None:
        """Start the replicas and wait until each has opened its shard.

        ``cluster_fixed``: no node will join the cluster (``--ray local``), so replicas that
        reserve more CPUs than any node has are refused at once. Otherwise the wait for the
        replicas is bounded by ``start_timeout_s`` (nodes may still be joining), and ends
        early when the server is stopped (`group.start_stopped`).

        Raises:
            SettingsError: the replicas cannot be placed (naming ``--ray-replica-cpus``,
                ``--replicas`` and what the cluster has), or not all started in time.
            SetupError: the server was stopped while it waited.
        """
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1 (got {replicas})")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)} (got {transport})")
        self._call_timeout_s = call_timeout_s
        self._runtime = runtime
        self._direct = transport == "direct"
        self._shards: list[_Shard] = []
        if cluster_fixed:
            _check_fits(replica_cpus)
        key = new_key() if self._direct else None
        actor = ray.remote(ShardReplica).options(
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=max_concurrency,
            num_cpus=replica_cpus,
            scheduling_strategy="SPREAD",
        )
        try:
            self._shards = [
                _Shard([actor.remote(str(path), worker_options, key) for _ in range(replicas)], key)
                for path in manifest.shard_paths(root)
            ]
            self._open(replica_cpus, time.monotonic() + start_timeout_s)
        except BaseException:
            self._kill_replicas()  # no handle outlives a failed start (nor `ray.shutdown()`)
            raise

    def _open(self, replica_cpus: float, until: float) -> None:
        """Wait until every replica has opened its shard (learning each shard's writer and
        each replica's address), until ``until`` at most; see `__init__`."""
        started = time.monotonic()
        pending = {
            replica.run.remote("stats"): (number, position)
            for number, shard in enumerate(self._shards)
            for position, replica in enumerate(shard.replicas)
        }
        stats: dict[tuple[int, int], Any] = {}
        next_log = started + START_LOG_EVERY_S
        stop = start_stopped.get()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
            for ref in done:
                stats[pending.pop(ref)] = ray.get(ref)  # a replica's failure to open, raised
            if not pending:
                break
            if stop is not None and stop.is_set():
                raise SetupError("stopped while waiting for the shard replicas to start")
            now = time.monotonic()
            waiting = _not_started(pending.values(), len(stats) + len(pending))
            placement = _placement(replica_cpus, len(self._shards[0].replicas))
            if now >= until:
                raise SettingsError(f"{waiting} within {now - started:.0f} s; {placement}")
            if now >= next_log:
                next_log = now + START_LOG_EVERY_S
                log.info("%s yet (waiting %.0f s more); %s", waiting, until - now, placement)
        for number, shard in enumerate(self._shards):
            writers = [p for p in range(len(shard.replicas)) if stats[number, p].writable]
            shard.writer = writers[0] if writers else None
            if self._direct:
                timeout = max(until - time.monotonic(), 1.0)
                addresses = ray.get([r.address.remote() for r in shard.replicas], timeout=timeout)
                for line, address in zip(shard.lines, addresses, strict=True):
                    line.address = address

    @property
    def shard_count(self) -> int:
        """How many shards the collection has."""
        return len(self._shards)

    @property
    def transport(self) -> str:
        """How calls reach the replicas: ``direct`` or ``ray`` (see the module docstring)."""
        return "direct" if self._direct else "ray"

    def replica_pids(self, shard: int) -> list[int]:
        """The process ids of a shard's replicas (tests and benches kill them)."""
        return [ray.get(r.pid.remote()) for r in self._shards[shard].replicas]

    def _deadline(self) -> float:
        deadline = request_deadline.get()
        return deadline if deadline is not None else time.monotonic() + self._call_timeout_s

    @staticmethod
    def _left(until: float) -> float:
        timeout = until - time.monotonic()
        if timeout <= 0:
            raise _AttemptTimeoutError
        return timeout

    @staticmethod
    def _attempt_until(deadline: float, attempts: int) -> float:
        """When an attempt started now should have answered: its share of the time left
        among ``attempts`` (itself and those that may follow), at least `MIN_ATTEMPT_S`;
        the last one has all of it."""
        if attempts <= 1:
            return deadline
        now = time.monotonic()
        return min(deadline, now + max(MIN_ATTEMPT_S, (deadline - now) / attempts))

    def _submit(
        self,
        shard: int,
        position: int,
        method: str,
        args: tuple[Any, ...],
        until: float,
        *,
        last: bool = True,
    ) -> _Call:
        """Start a call, to be answered by ``until``: a socket with the request sent
        (direct) or a Ray object ref; ``last``: no other replica of the shard is left to try
        (only then is a restarting replica's address waited for, `_address_of`).

        Raises:
            _ReplicaDownError: the replica cannot be reached now (the request was not sent).
            _AttemptTimeoutError: ``until`` passed first.
        """
        state = self._shards[shard]
        replica = state.replicas[position]
        if not self._direct:
            pending = replica.run_pickled.remote(method, pickled(args))
            return _Call(position, pending, until, reused=False)
        line = state.lines[position]
        reused = line.address is not None
        if not reused:
            line.address = self._address_of(shard, position, until, last=last)
        try:
            conn = line.send(pickled((method, args)), self._left(until))
        except TimeoutError:
            raise _AttemptTimeoutError from None
        except OSError as exc:
            line.reset()
            raise _ReplicaDownError(type(exc).__name__, reused=reused) from None
        return _Call(position, conn, until, reused)

    def _address_of(self, shard: int, position: int, until: float, *, last: bool) -> Address:
        """Where the replica listens, asked through Ray, which holds the question while it
        restarts the replica: waited for up to `ADDRESS_TIMEOUT_S` when ``last`` (no other
        replica is left to try), else `ADDRESS_QUICK_S`; a question not answered yet stays
        asked, and a later attempt takes its answer (the replica is down until then)."""
        state = self._shards[shard]
        pending = state.asking[position]
        if pending is None:
            pending = state.asking[position] = state.replicas[position].address.remote()
        timeout = min(self._left(until), ADDRESS_TIMEOUT_S if last else ADDRESS_QUICK_S)
        try:
            address: Address | None = ray.get(pending, timeout=timeout)
        except GetTimeoutError:
            raise _ReplicaDownError("no address yet (restarting)") from None
        except RayActorError as exc:
            state.asking[position] = None
            raise _ReplicaDownError(type(exc).__name__) from None
        state.asking[position] = None
        if address is None:
            raise _ReplicaDownError("it has no direct line")
        return address

    def _ready(self, calls: list[_Call], until: float) -> _Call | None:
        """The first of ``calls`` whose reply (or failure) has come, waiting until
        ``until`` at most; None when none has."""
        timeout = max(until - time.monotonic(), 0.0)
        if self._direct:
            poller = select.poll()
            for call in calls:
                poller.register(call.pending, select.POLLIN)
            ready = {fd for fd, _ in poller.poll(math.ceil(timeout * 1000))}
            return next((c for c in calls if c.pending.fileno() in ready), None)
        done, _ = ray.wait([c.pending for c in calls], num_returns=1, timeout=timeout)
        return next((c for c in calls if c.pending in done), None)

    def _result(self, shard: int, call: _Call, deadline: float) -> Any:
        """The result of a call `_submit` started (its reply has come, or is coming).

        Raises:
            _ReplicaDownError: the replica died during the call (the request was sent).
            DeadlineExceededError: the deadline passed first.
            HybridSearchError: the replica's domain error (a bad filter value), as itself.
        """
        try:
            timeout = self._left(deadline)
        except _AttemptTimeoutError:
            self._drop([call])  # its reply will not be read: close its connection now
            raise _late(shard) from None
        if self._direct:
            line = self._shards[shard].lines[call.position]
            try:
                reply = line.receive(call.pending, timeout)
            except TimeoutError:
                raise _late(shard) from None
            except OSError as exc:
                line.reset()
                why = type(exc).__name__
                raise _ReplicaDownError(why, sent=True, reused=call.reused) from None
            ok, value = pickle.loads(reply)
            if ok:
                return value
            if isinstance(value, HybridSearchError):
                raise value
            raise RuntimeError(f"shard {shard}'s replica failed: {value!r}") from value
        try:
            return pickle.loads(ray.get(call.pending, timeout=timeout))
        except GetTimeoutError:
            ray.cancel(call.pending)
            raise _late(shard) from None
        except RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, HybridSearchError):
                raise cause from None
            raise
        except RayActorError as exc:
            raise _ReplicaDownError(type(exc).__name__, sent=True) from None

    def _down(
        self,
        shard: int,
        position: int,
        why: str,
        *,
        forget: bool = False,
        then: str = "trying another",
    ) -> None:
        """Skip the replica for `DOWN_FOR_S`; ``forget``: also close its idle connections
        and ask Ray where it listens next time (it may have moved)."""
        state = self._shards[shard]
        state.down_until[position] = time.monotonic() + DOWN_FOR_S
        if forget and self._direct:
            state.lines[position].reset()
        log.warning("shard %d replica %d failed (%s); %s", shard, position, why, then)

    def _failed(
        self,
        shard: int,
        position: int,
        error: _ReplicaDownError,
        positions: list[int],
        *,
        read: bool,
        retried: set[int],
    ) -> None:
        """Mark a replica down; when it failed on what the front held (a restart made it
        stale) and the request is a read, or a write that was not sent, try it once more on a
        fresh connection to the address Ray gives now, after the shard's other replicas."""
        again = error.reused and (read or not error.sent) and position not in retried
        then = "trying it once more on a new connection" if again else "trying another"
        self._down(shard, position, str(error), then=then)
        if again:
            retried.add(position)
            positions.append(position)

    def _start(
        self,
        shard: int,
        method: str,
        args: tuple[Any, ...],
        positions: list[int],
        deadline: float,
        *,
        read: bool,
        retried: set[int],
    ) -> _Call | None:
        """Start the call on the first of ``positions`` (popped) that can be reached; a read
        with its share of the time left (`_attempt_until`), a write with all of it.

        Raises:
            DeadlineExceededError: the deadline passed first.
        """
        while positions:
            position = positions.pop(0)
            until = self._attempt_until(deadline, len(positions) + 1) if read else deadline
            try:
                return self._submit(shard, position, method, args, until, last=not positions)
            except _ReplicaDownError as exc:
                self._failed(shard, position, exc, positions, read=read, retried=retried)
            except _AttemptTimeoutError:
                if time.monotonic() >= deadline:
                    raise _late(shard) from None
                self._down(shard, position, "no answer in its share of the time", forget=True)
        return None

    def _await(
        self,
        shard: int,
        method: str,
        args: tuple[Any, ...],
        *,
        first: _Call | None,
        positions: list[int],
        deadline: float,
        read: bool = True,
        retried: set[int] | None = None,
        reply_deadline: float | None = None,
    ) -> tuple[bool, Any]:
        """(True, result) from the first replica that answers, or (False, None) when none.

        ``deadline``: when to stop waiting; ``reply_deadline`` (later, default ``deadline``):
        until when a reply that has come may still be read (`fan_out` with
        ``allow_partial`` stops waiting before the caller's deadline).

        A read's replica that has not answered in its share of the time (hung, or its node
        cut off) is marked down and the next replica is asked too, the first still awaited;
        one that failed on what the front held is tried once more (`_failed`). A write is
        one attempt with the whole deadline, sent again only when it was not sent.

        Raises:
            DeadlineExceededError: no replica answered before the deadline.
            UnavailableError: a write's replica failed once it had the request (it may have
                been applied, so it is not sent again).
        """
        remaining = list(positions)
        tried = set() if retried is None else retried
        calls = [] if first is None else [first]
        try:
            while True:
                if not calls:
                    call = self._start(
                        shard, method, args, remaining, deadline, read=read, retried=tried
                    )
                    if call is None:
                        return False, None
                    calls.append(call)
                newest = calls[-1]
                until = newest.until if remaining else deadline
                ready = self._ready(calls, until)
                if ready is None:
                    now = time.monotonic()
                    if now >= deadline:
                        raise _late(shard)
                    if now >= until:  # its share is spent: ask the next replica too
                        why = "no answer in its share of the time"
                        self._down(shard, newest.position, why, forget=True)
                        call = self._start(
                            shard, method, args, remaining, deadline, read=read, retried=tried
                        )
                        if call is not None:
                            calls.append(call)
                    continue
                calls.remove(ready)
                try:
                    value = self._result(shard, ready, reply_deadline or deadline)
                except _ReplicaDownError as exc:
                    if exc.sent and not read:
                        raise UnavailableError(
                            f"shard {shard}'s writer replica failed during the write ({exc}); "
                            "it may have been applied; retry"
                        ) from None
                    self._failed(shard, ready.position, exc, remaining, read=read, retried=tried)
                    continue
                self._shards[shard].down_until[ready.position] = 0.0  # it answers
                return True, value
        finally:
            self._drop(calls)

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        """Run ``method`` on every shard at once; retry a dead replica's share elsewhere.

        With ``allow_partial`` a shard is waited for until `PARTIAL_SHARE` of the time left
        has passed; one that has not answered by then is missing, like one with no live
        replica (see the module docstring).
        """
        deadline = self._deadline()
        wait_until = deadline
        if allow_partial:
            now = time.monotonic()
            wait_until = now + max(deadline - now, 0.0) * PARTIAL_SHARE
        numbers = list(range(self.shard_count)) if shards is None else list(shards)
        started: dict[int, tuple[tuple[Any, ...], list[int], set[int], _Call | None]] = {}
        results: dict[int, Any] = {}
        missing: list[int] = []
        try:
            for shard in numbers:
                args = args_of(shard)
                rest = self._shards[shard].order()
                retried: set[int] = set()
                start_by = wait_until
                if allow_partial:  # a hung replica's connection leaves time for the others
                    now = time.monotonic()
                    start_by = now + max(wait_until - now, 0.0) / 2
                try:
                    first = self._start(
                        shard, method, args, rest, start_by, read=True, retried=retried
                    )
                except DeadlineExceededError:
                    if not allow_partial:
                        raise
                    first = None  # `_await` tries its other replicas (`rest`), if any
                started[shard] = (args, rest, retried, first)
            if not self._direct and all(first for *_, first in started.values()):
                fast = self._get_all(
                    {shard: first.pending for shard, (*_, first) in started.items() if first},
                    wait_until,
                )
                if fast is not None:
                    return FanOut(fast)
            for shard, (args, rest, retried, first) in started.items():
                started[shard] = (args, rest, retried, None)  # `_await` owns the call now
                try:
                    ok, value = self._await(
                        shard,
                        method,
                        args,
                        first=first,
                        positions=rest,
                        deadline=wait_until,
                        retried=retried,
                        reply_deadline=deadline,
                    )
                except DeadlineExceededError:
                    if not allow_partial:
                        raise
                    log.warning("shard %d did not answer in time; answering without it", shard)
                    ok, value = False, None
                if ok:
                    results[shard] = value
                else:
                    missing.append(shard)
        finally:
            self._drop(first for *_, first in started.values())
        if missing and not allow_partial:
            raise UnavailableError(missing_shards_message(missing))
        return FanOut(results, tuple(sorted(missing)))

    def _drop(self, calls: Iterable[_Call | None]) -> None:
        """Close the connections of direct calls whose replies will not be read (a shard
        before them failed the whole request, or another replica answered first), so no
        reply is read as another call's."""
        if self._direct:
            for call in calls:
                if call is not None:
                    call.pending.close()

    @staticmethod
    def _get_all(refs: dict[int, Any], deadline: float) -> dict[int, Any] | None:
        """Each shard's result, in one ``ray.get`` (transport ``ray``); None when a call
        failed or the deadline passed (`fan_out` then awaits each call alone, retrying or
        raising as `_await` does)."""
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
        """Run a write on the writer replica of ``shard`` (found again after a restart).

        A write is sent again only when it was not sent (the replica could not be reached);
        one whose replica failed after it had the request fails UNAVAILABLE, and one not
        answered before the deadline DEADLINE_EXCEEDED: it may have been applied.
        """
        state = self._shards[shard]
        deadline = self._deadline()
        while True:
            if state.writer is None:
                self._find_writer(shard, deadline)
            if state.writer is None:
                raise UnavailableError(f"shard {shard} has no writer replica now; retry")
            ok, value = self._await(
                shard,
                method,
                args,
                first=None,
                positions=[state.writer],
                deadline=deadline,
                read=False,
            )
            if ok:
                return value
            state.writer = None
            left = deadline - time.monotonic()
            if left <= 0:
                raise UnavailableError(f"shard {shard}'s writer replica is down; retry")
            time.sleep(min(0.1, left))

    def _find_writer(self, shard: int, deadline: float) -> None:
        """Ask the shard's replicas which one writes (each up to `FIND_WRITER_TIMEOUT_S`,
        all within ``deadline``)."""
        state = self._shards[shard]
        for position, replica in enumerate(state.replicas):
            timeout = min(FIND_WRITER_TIMEOUT_S, deadline - time.monotonic())
            if timeout <= 0:
                return
            try:
                if ray.get(replica.run.remote("stats"), timeout=timeout).writable:
                    state.writer = position
                    return
            except (RayActorError, GetTimeoutError):
                continue

    def close(self) -> None:
        """Stop every replica and drop their handles (a handle released after
        ``ray.shutdown()`` aborts the process); then close ``runtime`` when given (the Ray
        that `load_sharded` started for this group)."""
        self._kill_replicas()
        if self._runtime is not None:
            self._runtime.close()

    def _kill_replicas(self) -> None:
        for shard in self._shards:
            for line in shard.lines:
                line.reset()
            for replica in shard.replicas:
                ray.kill(replica, no_restart=True)
            shard.replicas = []
            shard.asking = []
        self._shards = []


def _check_fits(replica_cpus: float) -> None:
    """A `SettingsError` when no node of the cluster has ``replica_cpus`` CPUs (a cluster no
    node will join: Ray would wait for one for ever)."""
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    largest = max(
        (float(n["Resources"].get("CPU", 0)) for n in nodes if n.get("Alive")), default=0.0
    )
    if replica_cpus > largest:
        raise SettingsError(
            f"--ray-replica-cpus (env HYBRIDSEARCH_RAY_REPLICA_CPUS) {replica_cpus:g}: no node "
            f"of the Ray cluster has that many CPUs (the largest has {largest:g}), so no shard "
            "replica could be placed; lower it (0: replicas reserve no CPU)"
        )


def _not_started(waiting: Iterable[tuple[int, int]], total: int) -> str:
    waiting = list(waiting)
    shards = ", ".join(str(s) for s in sorted({shard for shard, _ in waiting}))
    return f"{len(waiting)} of {total} shard replicas (of shard(s) {shards}) have not started"


def _placement(replica_cpus: float, replicas: int) -> str:
    """What the replicas reserve and what the cluster has, for a start that waits."""
    try:
        total = float(ray.cluster_resources().get("CPU", 0))  # type: ignore[no-untyped-call]
        free = float(ray.available_resources().get("CPU", 0))  # type: ignore[no-untyped-call]
        nodes = len([n for n in ray.nodes() if n.get("Alive")])  # type: ignore[no-untyped-call]
        cluster = f"the Ray cluster has {nodes} node(s), {total:g} CPUs, {free:g} free"
    except RayError as exc:
        cluster = f"the Ray cluster's resources are unknown ({exc})"
    return (
        f"each replica reserves --ray-replica-cpus (env HYBRIDSEARCH_RAY_REPLICA_CPUS) "
        f"{replica_cpus:g} CPUs, --replicas (env HYBRIDSEARCH_REPLICAS) {replicas} per shard; "
        f"{cluster} (a replica also waits while its shard opens)"
    )
