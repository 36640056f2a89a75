"""The cost of one hop to a Ray worker: a plain actor call vs a Ray Serve deployment handle.

Both echo a payload shaped like a shard's reply (two candidate lists of 1,000 ids + scores).
Measured on a local Ray (``ray.init(num_cpus=2)``): p50/p99 of sequential awaited calls, and
calls/s with ``--in-flight`` concurrent callers. This decided how `serve --ray` runs a shard
replica (an actor; see bench/results/*-ray-serve.md).

The ``compiled graph`` row sends the packed call through a Ray Compiled Graph (shared-memory
channels instead of a task per call), with its sequential rate, and the CPU its actor's
loop burns while no call comes (it polls its channel): why the sharded front does not use
one on a 2-core machine, though its hop is far shorter.

Three more rows show how the sharded front can call its replicas (`sharding.ray_group`): a
blocking ``ray.get`` from a thread (``actor get``; gRPC threads call it so), the same with
the request and the reply pickled by the standard pickler and sent as bytes, the reply two
`worker.ArmList`s (``actor packed``: ``--ray-transport ray``), and those bytes over the
front's held connection to the actor instead of a Ray task (``direct line``: the default,
`sharding.replica_line`).

With ``--shard DIR --model M`` (a shard directory and its encoder), it also times where one
shard's hop goes: the shard's finished search (`ShardWorker.search`, what the only shard of
a collection runs per query) called in this process and in a Ray actor, called both ways the
front can call its replicas, the actor's part split into the search itself and the call
around it (for a Ray task: submission, transport, dispatch, the reply, unpickling).

    python -m bench.ray_hop --calls 400 --in-flight 32 [--shard DIR --model M]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import serve

from bench.common import process_cpu_s, sample_queries
from hybridsearch.config import Device
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.harness import percentile
from hybridsearch.sharding.ray_group import pickled
from hybridsearch.sharding.replica_line import Address, ReplicaLine, ReplicaListener, new_key
from hybridsearch.sharding.searcher import arms_request
from hybridsearch.sharding.worker import ArmList, ShardWorker
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Query


def reply_payload(depth: int) -> dict[str, Any]:
    """A shard reply's shape: ids and scores of two arms of ``depth`` candidates."""
    ids = [f"doc-{i}" for i in range(depth)]
    scores = np.linspace(1.0, 0.0, depth)
    return {"sparse": (ids, scores), "dense": (ids, scores)}


@ray.remote(max_restarts=-1)
class EchoActor:
    """An actor returning a fixed reply."""

    def __init__(self, depth: int, key: bytes) -> None:
        self._reply = reply_payload(depth)
        self._ordinals = np.arange(depth, dtype=np.int64)
        self._scores = np.linspace(1.0, 0.0, depth).astype(np.float32).astype(np.float64)
        host: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        self._listener = ReplicaListener(host, key, self._answer)

    def address(self) -> Address:
        return self._listener.address

    def _answer(self, method: str, args: tuple[Any, ...]) -> bytes:
        return self.call_packed(args[0])

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._reply

    def pid(self) -> int:
        return os.getpid()

    def call_packed(self, request: bytes) -> bytes:
        pickle.loads(request)
        ids, _ = self._reply["sparse"]
        arm = ArmList(self._ordinals, ids, self._scores)  # both arms score in float32
        return pickle.dumps({"sparse": arm, "dense": arm}, protocol=pickle.HIGHEST_PROTOCOL)


@serve.deployment(max_ongoing_requests=200)
class EchoDeployment:
    """The same as a Serve deployment."""

    def __init__(self, depth: int) -> None:
        self._reply = reply_payload(depth)

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._reply


async def measure(call: Any, calls: int, in_flight: int) -> dict[str, float]:
    """p50/p99 (ms) of sequential calls, then calls/s with ``in_flight`` callers."""
    request = {"vector": np.zeros(384, dtype=np.float32), "text": "a query"}
    for _ in range(20):
        await call(request)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await call(request)
        times.append((time.perf_counter() - started) * 1000)
    done = 0

    async def worker(n: int) -> None:
        nonlocal done
        for _ in range(n):
            await call(request)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(calls // in_flight + 1) for _ in range(in_flight)))
    rate = done / (time.perf_counter() - started)
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 0.99),
        "calls_per_s": rate,
    }


def measure_blocking(call: Callable[[Any], Any], calls: int, in_flight: int) -> dict[str, float]:
    """`measure` for a blocking call: sequential calls, then ``in_flight`` threads."""
    request = {"vector": np.zeros(384, dtype=np.float32), "text": "a query"}
    for _ in range(20):
        call(request)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call(request)
        times.append((time.perf_counter() - started) * 1000)
    per_thread = calls // in_flight + 1
    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(lambda _: [call(request) for _ in range(per_thread)], range(in_flight)))
    rate = per_thread * in_flight / (time.perf_counter() - started)
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 0.99),
        "calls_per_s": rate,
    }


def compiled_graph(depth: int, calls: int, idle_s: float = 3.0) -> dict[str, float]:
    """The packed call through a Ray Compiled Graph: p50/p99 of sequential calls, their rate
    (a compiled graph takes one caller at a time), and the CPU of the actor's process while
    nothing is sent, in percent of one core: in the ``idle_s`` after the last call
    (``idle_core_pct``) and in the ``idle_s`` after that (``later_idle_core_pct``)."""
    from ray.dag import InputNode  # noqa: PLC0415

    actor = EchoActor.remote(depth, new_key())  # type: ignore[attr-defined]
    pid = ray.get(actor.pid.remote())
    with InputNode() as request:
        dag = actor.call_packed.bind(request)
    graph = dag.experimental_compile()
    try:
        payload = pickle.dumps(
            {"vector": np.zeros(384, dtype=np.float32), "text": "a query"},
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        for _ in range(20):
            pickle.loads(ray.get(graph.execute(payload)))
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            pickle.loads(ray.get(graph.execute(payload)))
            times.append((time.perf_counter() - started) * 1000)
        idle = []  # the first idle_s after the last call, then the next idle_s
        for _ in range(2):
            before = process_cpu_s(pid)
            time.sleep(idle_s)
            idle.append(100 * (process_cpu_s(pid) - before) / idle_s)
    finally:
        graph.teardown()
        ray.kill(actor)
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 0.99),
        "calls_per_s": 1000 * len(times) / sum(times),
        "idle_core_pct": idle[0],
        "later_idle_core_pct": idle[1],
    }


def line_call(line: ReplicaLine, method: str, args: tuple[Any, ...]) -> Any:
    """A call over a direct line, as `sharding.ray_group` makes it."""
    conn = line.send(pickled((method, args)), 30.0)
    ok, value = pickle.loads(line.receive(conn, 30.0))
    assert ok, value
    return value


class TimedShard:
    """A shard replica (as `sharding.ray_group.ShardReplica` runs one) that also returns how
    long the worker's method took inside the actor; with ``key`` it answers on a direct
    line too."""

    def __init__(self, path: str, key: bytes | None = None) -> None:
        self._worker = ShardWorker(Path(path), writable=False, follow_interval_s=0)
        self._listener: ReplicaListener | None = None
        if key is not None:
            host: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
            self._listener = ReplicaListener(host, key, self._answer)

    def address(self) -> Address | None:
        return None if self._listener is None else self._listener.address

    def _answer(self, method: str, args: tuple[Any, ...]) -> tuple[bytes, float]:
        return self.run_pickled(method, pickled(args))

    def run_pickled(self, method: str, args: bytes) -> tuple[bytes, float]:
        started = time.perf_counter()
        result = pickled(getattr(self._worker, method)(*pickle.loads(args)))
        return result, time.perf_counter() - started


def shard_split(shard: Path, model: Path, calls: int) -> dict[str, float]:
    """Median ms of one shard's finished search per query: called in this process, and in a
    Ray actor through a Ray task and through a direct line (the whole call, and the actor's
    own part of it), sequential calls."""
    info = open_index(shard).manifest.encoder
    assert info is not None, "the shard holds no vectors"
    encoder = load_query_encoder(model, Device.CPU, max_length=info.max_length, spinning=False)
    texts = (sample_queries() * (1 + calls // 225))[:calls]
    vectors = encoder.encode_queries(texts)
    requests = []
    for text, vector in zip(texts, vectors, strict=True):
        query = Query(text)
        requests.append(pickle.dumps(([(query, arms_request(query, vector))],)))
    local = TimedShard(str(shard))
    key = new_key()
    actor: Any = (
        ray.remote(TimedShard).options(max_concurrency=4, num_cpus=0).remote(str(shard), key)
    )
    ray.get(actor.run_pickled.remote("stats", pickle.dumps(())))
    line = ReplicaLine(key)
    line.address = ray.get(actor.address.remote())
    in_process: list[float] = []
    whole: list[float] = []
    inside: list[float] = []
    line_whole: list[float] = []
    line_inside: list[float] = []
    for request in requests:
        started = time.perf_counter()
        reply, _ = local.run_pickled("search", request)
        pickle.loads(reply)
        in_process.append(time.perf_counter() - started)
        started = time.perf_counter()
        reply, spent = ray.get(actor.run_pickled.remote("search", request))
        pickle.loads(reply)
        whole.append(time.perf_counter() - started)
        inside.append(spent)
        started = time.perf_counter()
        reply, spent = line_call(line, "search", pickle.loads(request))
        pickle.loads(reply)
        line_whole.append(time.perf_counter() - started)
        line_inside.append(spent)
    line.reset()
    ray.kill(actor)
    return {
        "in_process_ms": 1000 * statistics.median(in_process),
        "actor_ms": 1000 * statistics.median(whole),
        "actor_search_ms": 1000 * statistics.median(inside),
        "line_ms": 1000 * statistics.median(line_whole),
        "line_search_ms": 1000 * statistics.median(line_inside),
    }


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    key = new_key()
    actor = EchoActor.remote(args.depth, key)  # type: ignore[attr-defined]

    async def actor_call(request: dict[str, Any]) -> Any:
        return await actor.call.remote(request)

    def get_call(request: dict[str, Any]) -> Any:
        return ray.get(actor.call.remote(request))

    def packed_call(request: dict[str, Any]) -> Any:
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.loads(ray.get(actor.call_packed.remote(payload)))

    results = {"actor": await measure(actor_call, args.calls, args.in_flight)}
    results["actor get"] = await asyncio.to_thread(
        measure_blocking, get_call, args.calls, args.in_flight
    )
    results["actor packed"] = await asyncio.to_thread(
        measure_blocking, packed_call, args.calls, args.in_flight
    )
    line = ReplicaLine(key)
    line.address = ray.get(actor.address.remote())

    def direct_call(request: dict[str, Any]) -> Any:
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.loads(line_call(line, "call_packed", (payload,)))

    results["direct line"] = await asyncio.to_thread(
        measure_blocking, direct_call, args.calls, args.in_flight
    )
    line.reset()
    ray.kill(actor)
    results["compiled graph"] = await asyncio.to_thread(compiled_graph, args.depth, args.calls)
    app = EchoDeployment.bind(args.depth)  # type: ignore[attr-defined]
    handle = serve.run(app, name="echo", route_prefix=None)

    async def serve_call(request: dict[str, Any]) -> Any:
        return await handle.remote(request)

    results["serve"] = await measure(serve_call, args.calls, args.in_flight)
    serve.shutdown()  # type: ignore[no-untyped-call]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--depth", type=int, default=1000, help="candidates per arm")
    parser.add_argument("--shard", type=Path, help="also time this shard's search (see above)")
    parser.add_argument("--model", type=Path, help="the shard's encoder (with --shard)")
    args = parser.parse_args()
    if args.shard is not None and args.model is None:
        parser.error("--shard needs --model")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = asyncio.run(run(args))
        split = shard_split(args.shard, args.model, args.calls) if args.shard else None
    finally:
        ray.shutdown()
    print(f"{'hop':14} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
    for name, row in results.items():
        print(f"{name:14} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['calls_per_s']:9.0f}")
    graph = results["compiled graph"]
    print(
        f"compiled graph: its actor's process used {graph['idle_core_pct']:.0f}% of a core "
        f"in the 3 s after the last call, {graph['later_idle_core_pct']:.0f}% in the next 3 s"
    )
    if split is not None:
        ray_part = split["actor_ms"] - split["actor_search_ms"]
        line_part = split["line_ms"] - split["line_search_ms"]
        print(
            f"one shard's finished search, p50 per query: {split['in_process_ms']:.2f} ms in "
            f"this process; {split['actor_ms']:.2f} ms through a Ray actor's task, of which "
            f"the search {split['actor_search_ms']:.2f} and Ray's call around it "
            f"{ray_part:.2f}; {split['line_ms']:.2f} ms over a direct line to it, of which the "
            f"search {split['line_search_ms']:.2f} and the call around it {line_part:.2f}"
        )


if __name__ == "__main__":
    main()
