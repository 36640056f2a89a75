"""Time to the first (BM25-only, partial) answer vs time to the final (fused) answer.

Sends each query as a ``progressive`` hybrid request on a SearchStream, one at a time, and
prints the medians (and p90) over N queries of the time from sending the request to its
partial and to its final response.

    hybridsearch serve --index var/indexes/sample --model MODEL &
    python -m bench.progressive --server 127.0.0.1:50051 --queries 200
"""

from __future__ import annotations

import argparse
import queue
import statistics
import time
from collections.abc import Iterator

import grpc

from bench.common import sample_queries
from hybridsearch.cli.flag_types import server_address
from hybridsearch.harness import percentile
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--server", type=server_address, default="127.0.0.1:50051", help="HOST:PORT"
    )
    parser.add_argument("--queries", type=int, default=200, help="N queries (sample set)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    queries = sample_queries()
    outbox: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.SearchStreamRequest]:
        while (request := outbox.get()) is not None:
            yield request

    first_ms: list[float] = []
    final_ms: list[float] = []
    with grpc.insecure_channel(args.server) as channel:
        stream = search_pb2_grpc.SearchServiceStub(channel).SearchStream(requests())
        for i in range(args.warmup + args.queries):
            text = queries[i % len(queries)]
            request = pb.SearchStreamRequest(
                request_id=str(i),
                search=pb.SearchRequest(query=text, top_k=args.top_k),
                progressive=True,
            )
            sent = time.perf_counter()
            outbox.put(request)
            partial = next(stream)
            got_partial = time.perf_counter()
            final = next(stream)
            got_final = time.perf_counter()
            if not partial.partial or final.partial or final.request_id != str(i):
                raise SystemExit(f"unexpected responses for query {i}: {partial} {final}")
            if i >= args.warmup:
                first_ms.append((got_partial - sent) * 1000)
                final_ms.append((got_final - sent) * 1000)
        outbox.put(None)
        for _ in stream:
            pass
    print(f"queries={args.queries} top_k={args.top_k} server={args.server}")
    print(
        f"time to first (partial, BM25) response: median {statistics.median(first_ms):.2f} ms, "
        f"p90 {percentile(first_ms, 0.9):.2f} ms"
    )
    print(
        f"time to final (fused) response:         median {statistics.median(final_ms):.2f} ms, "
        f"p90 {percentile(final_ms, 0.9):.2f} ms"
    )


if __name__ == "__main__":
    main()
