"""What protobuf's runtime costs per call: upb (the binary wheel's, what the server runs) vs
the pure-Python runtime, on the messages of one Search call.

Each runtime runs in its own process (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION``): parsing a
SearchRequest (a query, a filter, fusion options) and building + serializing a SearchResponse
of 10 hits with titles, texts and explanations, as the server does per call. Median µs over
``--calls`` calls, and the ratio.

    python -m bench.proto_backend [--calls 3000] [--label DATE]

Writes bench/results/<label>-proto-backend.md. Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import RESULTS, env_summary

BACKENDS = ("upb", "python")


def measure(calls: int) -> dict[str, Any]:
    """In this process's runtime: median µs to parse a request and to build a response."""
    from hybridsearch.api.proto_backend import protobuf_backend  # noqa: PLC0415
    from hybridsearch.v1 import filter_pb2 as fpb  # noqa: PLC0415
    from hybridsearch.v1 import search_pb2 as pb  # noqa: PLC0415

    request = pb.SearchRequest(
        query="heat transfer at hypersonic speed over a blunt body",
        top_k=10,
        explain=True,
        fusion=pb.FusionOptions(method=pb.FUSION_METHOD_RRF),
        filter=fpb.Filter(must=[fpb.Condition(has_id=fpb.HasId(ids=["1", "2", "3"]))]),
    ).SerializeToString()
    text = "on blunt-body heat transfer at hypersonic speed and low reynolds number . " * 4

    def respond() -> bytes:
        response = pb.SearchResponse()
        for rank in range(1, 11):
            hit = response.hits.add(id=f"doc-{rank}", score=1.0 / rank, rank=rank)
            hit.title = "blunt-body heat transfer"
            hit.text = text
            hit.explanation.sparse.raw_score = 12.15 / rank
            hit.explanation.sparse.rank = rank
            hit.explanation.sparse.normalized_score = 1.0 / rank
            hit.explanation.dense.raw_score = 0.79 / rank
            hit.explanation.dense.rank = rank
            hit.explanation.dense.normalized_score = 1.0 / rank
            hit.explanation.fused_score = 1.0 / rank
        response.timings.total_us = 7443
        return response.SerializeToString()

    def timed(work: Callable[[], object]) -> float:
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return 1e6 * statistics.median(times)

    return {
        "backend": protobuf_backend(),
        "parse_request_us": timed(lambda: pb.SearchRequest.FromString(request)),
        "build_response_us": timed(respond),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--label", default=datetime.date.today().isoformat())
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls)))
        return 0
    rows = {}
    for backend in BACKENDS:
        env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=backend)
        done = subprocess.run(
            [sys.executable, "-m", "bench.proto_backend", "--child", "--calls", str(args.calls)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows[backend] = json.loads(done.stdout)
        assert rows[backend]["backend"] == backend, rows[backend]
    env_info = env_summary()
    upb, python = rows["upb"], rows["python"]
    lines = [
        f"# protobuf runtime: upb vs pure Python, {args.label}",
        "",
        f"`python -m bench.proto_backend --calls {args.calls}` on {env_info['cpus']} CPUs "
        f"({env_info['cpu']}), commit {env_info['commit']}, load average at start "
        f"{env_info['load_avg_at_start']}. Median µs per call, each runtime in its own "
        "process.",
        "",
        "| per Search call | upb µs | pure Python µs | ratio |",
        "|---|---:|---:|---:|",
    ]
    for key, name in (
        ("parse_request_us", "parse the SearchRequest"),
        ("build_response_us", "build + serialize a 10-hit SearchResponse (explain, text)"),
    ):
        lines.append(
            f"| {name} | {upb[key]:.1f} | {python[key]:.1f} | {python[key] / upb[key]:.1f}x |"
        )
    total_upb = upb["parse_request_us"] + upb["build_response_us"]
    total_py = python["parse_request_us"] + python["build_response_us"]
    lines += [
        "",
        f"Together {total_upb:.0f} µs with upb against {total_py:.0f} µs in pure Python per call: "
        "the server runs upb (`hybridsearch.api.proto_backend`; it warns at start-up otherwise).",
        "",
    ]
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.label}-proto-backend.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
