"""The cost of one hop to a Ray worker: a plain actor call vs a Ray Serve deployment handle.

Both echo a payload shaped like a shard's reply (two candidate lists of 1,000 ids + scores).
Measured on a local Ray (``ray.init(num_cpus=2)``): p50/p99 of sequential awaited calls, and
calls/s with ``--in-flight`` concurrent callers. This decided how `serve --ray` runs a shard
replica (an actor; see bench/results/*-ray-serve.md).

The ``compiled graph`` row sends the packed call through a Ray Compiled Graph (shared-memory
channels instead of a task per call), with its sequential rate, and the CPU its actor's
loop burns while no call comes (it polls its channel): why the sharded front does not use
one on a 2-core machine, though its hop is far shorter.

Two more rows show how the sharded front calls its replicas (`sharding.ray_group`): a
blocking ``ray.get`` from a thread (``actor get``; gRPC threads call it so), and the same
with the request and the reply pickled by the standard pickler and sent as bytes, the reply
two `worker.ArmList`s (``actor packed``: what a shard's answer costs since
bench/results/2026-12-02-ray-hop.md).

    python -m bench.ray_hop --calls 400 --in-flight 32
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

from hybridsearch.harness import percentile
from hybridsearch.sharding.worker import ArmList


def reply_payload(depth: int) -> dict[str, Any]:
    """A shard reply's shape: ids and scores of two arms of ``depth`` candidates."""
    ids = [f"doc-{i}" for i in range(depth)]
    scores = np.linspace(1.0, 0.0, depth)
    return {"sparse": (ids, scores), "dense": (ids, scores)}


@ray.remote(max_restarts=-1)
class EchoActor:
    """An actor returning a fixed reply."""

    def __init__(self, depth: int) -> None:
        self._reply = reply_payload(depth)
        self._ordinals = np.arange(depth, dtype=np.int64)
        self._scores = np.linspace(1.0, 0.0, depth).astype(np.float32).astype(np.float64)

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


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compiled_graph(depth: int, calls: int, idle_s: float = 3.0) -> dict[str, float]:
    """The packed call through a Ray Compiled Graph: p50/p99 of sequential calls, their rate
    (a compiled graph takes one caller at a time), and the CPU of the actor's process while
    nothing is sent, in percent of one core: in the ``idle_s`` after the last call
    (``idle_core_pct``) and in the ``idle_s`` after that (``later_idle_core_pct``)."""
    from ray.dag import InputNode  # noqa: PLC0415

    actor = EchoActor.remote(depth)  # type: ignore[attr-defined]
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


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    actor = EchoActor.remote(args.depth)  # type: ignore[attr-defined]

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
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = asyncio.run(run(args))
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


if __name__ == "__main__":
    main()
