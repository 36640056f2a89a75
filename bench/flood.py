"""Flood: many times the server's capacity at once; count OK vs RESOURCE_EXHAUSTED.

Starts a server with a small ``--max-in-flight``, keeps ``--concurrency`` calls outstanding
(closed loop, no pause) until ``--requests`` are sent, and checks that every answer is OK or
RESOURCE_EXHAUSTED and that the server is still healthy afterwards. The metrics endpoint is
scraped while the flood runs.

    python -m bench.flood --index var/indexes/sample \
        --model var/models/all-MiniLM-L6-v2 --max-in-flight 16 --concurrency 256 \
        --requests 5000 --out bench/results/flood-$(date +%F).md
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import os
import platform
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import metrics_lines, sample_queries
from hybridsearch.harness import percentile, start_server
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc


async def flood(address: str, args: argparse.Namespace, metrics_url: str) -> dict[str, object]:
    queries = sample_queries()
    codes: collections.Counter[str] = collections.Counter()
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    sent = 0
    scraped = ""

    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)

        async def worker() -> None:
            nonlocal sent
            while sent < args.requests:
                i = sent
                sent += 1
                request = pb.SearchRequest(query=queries[i % len(queries)], top_k=10)
                started = time.perf_counter()
                try:
                    await stub.Search(request, timeout=30)
                    code = "OK"
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                codes[code] += 1
                latencies[code].append((time.perf_counter() - started) * 1000)

        async def scrape_midway() -> None:
            nonlocal scraped
            while sent < args.requests // 2:
                await asyncio.sleep(0.05)
            scraped = await asyncio.to_thread(scrape, metrics_url)

        started = time.perf_counter()
        await asyncio.gather(scrape_midway(), *(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        health: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types lack Check
        status = (await health.Check(health_pb2.HealthCheckRequest())).status
        after = await stub.Search(pb.SearchRequest(query="boundary layer", top_k=3), timeout=30)
    return {
        "codes": codes,
        "latencies": latencies,
        "elapsed": elapsed,
        "health": health_pb2.HealthCheckResponse.ServingStatus.Name(status),
        "after_hits": len(after.hits),
        "scraped": scraped,
    }


def scrape(metrics_url: str) -> str:
    """The flood's counters and gauges from the server's metrics endpoint."""
    return metrics_lines(
        metrics_url,
        "hybridsearch_rpc_calls_total",
        "hybridsearch_stage_duration_seconds_count",
        "hybridsearch_stage_duration_seconds_sum",
        "hybridsearch_in_flight",
        "hybridsearch_index_documents",
    )


def report(args: argparse.Namespace, result: dict[str, object]) -> str:
    codes = result["codes"]
    latencies = result["latencies"]
    assert isinstance(codes, collections.Counter) and isinstance(latencies, dict)
    total = sum(codes.values())
    elapsed = float(str(result["elapsed"]))
    unexpected = {c: n for c, n in codes.items() if c not in ("OK", "RESOURCE_EXHAUSTED")}
    lines = [
        f"# Flood {datetime.date.today().isoformat()}",
        "",
        f"- host: {platform.node()} ({os.cpu_count()} CPUs), Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (the machine may be shared)",
        f"- index `{args.index}`, hybrid, top_k 10; server --max-in-flight {args.max_in_flight}, "
        f"--search-threads {args.search_threads}",
        f"- {total} requests, {args.concurrency} outstanding at all times "
        f"({args.concurrency / args.max_in_flight:.0f}x the in-flight bound), {elapsed:.1f} s",
        f"- OK: {codes['OK']}, RESOURCE_EXHAUSTED: {codes['RESOURCE_EXHAUSTED']}, "
        f"other: {unexpected or 'none'}",
    ]
    for code in ("OK", "RESOURCE_EXHAUSTED"):
        values = sorted(latencies.get(code, []))
        if values:
            lines.append(
                f"- {code} latency ms: p50 {percentile(values, 0.5):.1f}, "
                f"p99 {percentile(values, 0.99):.1f}"
            )
    lines += [
        f"- after the flood: health {result['health']}, a search returned "
        f"{result['after_hits']} hits",
        "",
        "Metrics scraped half-way through the flood:",
        "",
        "```",
        str(result["scraped"]),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--search-threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    serve_args = ["--index", str(args.index), "--max-in-flight", str(args.max_in_flight),
                  "--search-threads", str(args.search_threads)]  # fmt: skip
    if args.model:
        serve_args += ["--model", str(args.model)]
    server = start_server(*serve_args, "--log-level", "WARNING", metrics=True)
    try:
        server.wait_serving(timeout=600)
        result = asyncio.run(flood(server.address, args, server.metrics_url))
    finally:
        code = server.stop()
    text = report(args, result) + f"Server exit code after SIGTERM: {code}\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
