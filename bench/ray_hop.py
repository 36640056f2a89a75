"""The cost of one hop to a Ray worker: a plain actor call vs a Ray Serve deployment handle.

Both echo a payload shaped like a shard's reply (two candidate lists of 1,000 ids + scores).
Measured on a local Ray (``ray.init(num_cpus=2)``): p50/p99 of sequential awaited calls, and
calls/s with ``--in-flight`` concurrent callers. This decided how `serve --ray` runs a shard
replica (an actor; see bench/results/*-ray-serve.md).

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
import pickle
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    print(f"{'hop':12} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
    for name, row in results.items():
        print(f"{name:12} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['calls_per_s']:9.0f}")


if __name__ == "__main__":
    main()
