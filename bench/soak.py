"""Soak: a fixed request rate, below capacity, for N minutes against a fresh server.

Open loop (a request is sent every 1/rate seconds whether or not earlier ones finished), so a
slowing server shows up as latency and errors, not as a lower rate. Reports errors by code,
p50/p90/p99 latency per minute and overall, and the server's RSS at the start of load, after a
one-minute warm-up and at the end (target: growth under 10 %). Writes a Markdown report.

    python -m bench.soak --index var/indexes/sample \
        --model var/models/all-MiniLM-L6-v2 --minutes 10 --rate 20 \
        --out bench/results/soak-$(date +%F).md
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

import grpc

from bench.common import metrics_lines, sample_queries
from hybridsearch.harness import ServerProcess, percentile, start_server
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc

MODES = {"hybrid": pb.RETRIEVAL_MODE_HYBRID, "sparse": pb.RETRIEVAL_MODE_SPARSE}


class Tally:
    """Latencies and status codes, overall and per minute."""

    def __init__(self) -> None:
        self.codes: collections.Counter[str] = collections.Counter()
        self.latencies_ms: list[float] = []
        self.per_minute: dict[int, list[float]] = collections.defaultdict(list)
        self.rss: list[tuple[float, int]] = []

    def add(self, minute: int, code: str, latency_ms: float) -> None:
        self.codes[code] += 1
        if code == "OK":
            self.latencies_ms.append(latency_ms)
            self.per_minute[minute].append(latency_ms)


async def one(
    stub: search_pb2_grpc.SearchServiceAsyncStub,
    request: pb.SearchRequest,
    tally: Tally,
    minute: int,
) -> None:
    started = time.perf_counter()
    try:
        await stub.Search(request, timeout=5.0)
        code = "OK"
    except grpc.aio.AioRpcError as error:
        code = error.code().name
    tally.add(minute, code, (time.perf_counter() - started) * 1000)


async def drive(
    address: str, args: argparse.Namespace, server: ServerProcess, tally: Tally
) -> float:
    queries = sample_queries()
    mode = MODES[args.mode]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        interval = 1.0 / args.rate
        total = int(args.minutes * 60 * args.rate)
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        next_rss = started
        for i in range(total):
            due = started + i * interval
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            if now >= next_rss:
                tally.rss.append((now - started, server.rss_bytes()))
                next_rss += 30.0
            request = pb.SearchRequest(query=queries[i % len(queries)], top_k=10, mode=mode)
            task = asyncio.create_task(one(stub, request, tally, int((now - started) // 60)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        tally.rss.append((elapsed, server.rss_bytes()))
        return elapsed


def report(args: argparse.Namespace, tally: Tally, elapsed: float, metrics: str) -> str:
    lat = sorted(tally.latencies_ms)
    sent = sum(tally.codes.values())
    errors = sent - tally.codes["OK"]
    rss_start = tally.rss[0][1]
    warm = next((rss for t, rss in tally.rss if t >= 60), rss_start)
    rss_end = tally.rss[-1][1]
    mib = 1024 * 1024
    lines = [
        f"# Soak {datetime.date.today().isoformat()}",
        "",
        f"- host: {platform.node()} ({os.cpu_count()} CPUs), Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (the machine may be shared)",
        f"- index: `{args.index}`, mode {args.mode}, top_k 10, Cranfield queries in turn",
        f"- {args.minutes} min at {args.rate} req/s open loop; {sent} requests in {elapsed:.0f} s "
        f"({sent / elapsed:.1f} req/s achieved)",
        f"- status codes: {dict(tally.codes)}; "
        f"errors: {errors} ({100 * errors / max(sent, 1):.3f} %)",
        f"- latency ms (OK): p50 {percentile(lat, 0.5):.1f}, "
        f"p90 {percentile(lat, 0.9):.1f}, p99 {percentile(lat, 0.99):.1f}, "
        f"max {lat[-1] if lat else 0:.1f}",
        f"- server RSS: start of load {rss_start / mib:.1f} MiB, after 1 min {warm / mib:.1f} MiB, "
        f"end {rss_end / mib:.1f} MiB; growth from start {100 * (rss_end / rss_start - 1):+.1f} %, "
        f"from 1 min {100 * (rss_end / warm - 1):+.1f} % (target < 10 %)",
        "",
        "| minute | requests OK | p50 ms | p99 ms |",
        "| --- | --- | --- | --- |",
    ]
    for minute in sorted(tally.per_minute):
        values = sorted(tally.per_minute[minute])
        lines.append(
            f"| {minute} | {len(values)} | {percentile(values, 0.5):.1f} | "
            f"{percentile(values, 0.99):.1f} |"
        )
    lines += [
        "",
        "RSS samples (s, MiB): " + ", ".join(f"{t:.0f}: {r / mib:.1f}" for t, r in tally.rss),
    ]
    lines += ["", "Metrics scraped at the end:", "", "```", metrics, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--mode", choices=sorted(MODES), default="hybrid")
    parser.add_argument("--out", type=Path, help="Markdown report (also printed)")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra serve flag")
    args = parser.parse_args()
    serve_args = ["--index", str(args.index), *(["--model", str(args.model)] if args.model else [])]
    server = start_server(*serve_args, "--log-level", "WARNING", *args.serve_arg, metrics=True)
    try:
        server.wait_serving(timeout=600)
        tally = Tally()
        elapsed = asyncio.run(drive(server.address, args, server, tally))
        metrics = metrics_lines(
            server.metrics_url,
            "hybridsearch_rpc_calls_total",
            "hybridsearch_stage_duration_seconds_count",
            "hybridsearch_in_flight",
            "hybridsearch_index_documents",
        )
    finally:
        code = server.stop()
    text = report(args, tally, elapsed, metrics) + f"\nServer exit code after SIGTERM: {code}\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
