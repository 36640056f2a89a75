"""SearchStream throughput: an old commit's server beside this tree's, in one run.

Both servers are started from their own checkouts (``server/`` on PYTHONPATH) on the same
BM25-only index of a small collection (ADI by default), and answer sparse-only queries:
each search is cheap, so the stream's plumbing (reading, admission, writing) dominates.
In every round each server answers, in turn (their order alternating), two streams of
``--requests`` requests:

* pipelined: the client sends every request without waiting (the server keeps up to its
  ``stream_max_in_flight`` in flight) and reads the answers as they come;
* lock-step: the client sends one request, waits for its answer, then sends the next.

For each stream: answers per second (wall clock, first send to last answer) and the
server's CPU ms per answer (its /proc utime + stime over the stream). The report gives
every round, the medians over the rounds and the new/old ratios. ``--calls`` adds the Python
function calls per answer on each server's event-loop thread, under cProfile.

    python -m bench.stream_writing --old-tree /work/wt-old [--rounds 5] [--requests 2000] [--calls]

(``--old-ref REF`` instead checks REF out once into bench/.work/old-REF.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pstats
import queue
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from bench.common import REPO, WORK, env_summary, load_queries, tree_commit
from bench.overhead import old_tree
from hybridsearch.harness import CLI, ServerProcess, run_cli, start_server
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc

SHARED = Path(os.environ.get("HYBRIDSEARCH_SHARED_DATA", REPO.parent / "shared" / "data"))
OLD_REF = "8814446^"
CLIENTS = ("pipelined", "lock-step")
WARMUP_REQUESTS = 200
CALLS_SHORT = 200  # requests of the shorter stream of `calls_per_answer`


@dataclasses.dataclass
class Served:
    """A server under test: its label, process and the tree it runs."""

    label: str
    process: ServerProcess
    tree: Path


@dataclasses.dataclass
class StreamRun:
    """One measured stream."""

    answers: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.answers / self.seconds

    @property
    def cpu_ms_per_answer(self) -> float:
        return self.cpu_s / self.answers * 1000


def sparse_index(collection: Path) -> Path:
    """A BM25-only index of ``collection`` under bench/.work (built once)."""
    out = WORK / "indexes" / f"{collection.name}-sparse"
    if not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        corpus = collection / "corpus.jsonl"
        run_cli("index", "--corpus", str(corpus), "--out", str(out), "--no-dense", "--no-progress")
    return out


def start(label: str, tree: Path, index: Path, port: int, profile: Path | None = None) -> Served:
    """``hybridsearch serve`` from ``tree``'s sources on ``port``, SERVING; with ``profile``,
    under cProfile, which writes its statistics there when the server exits."""
    env = {**os.environ, "PYTHONPATH": str(tree / "server")}
    log = WORK / f"stream-writing-server-{label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    program: tuple[str, ...] = (*CLI, "serve")
    if profile is not None:
        program = (sys.executable, "-m", "cProfile", "-o", str(profile), *CLI[1:], "serve")
    server = start_server(
        "--index", str(index), "--port", str(port), "--log-level", "INFO",
        program=program, log_path=log, env=env, cwd=tree,
    )  # fmt: skip
    try:
        server.wait_serving(timeout=600)
    except BaseException:
        server.stop()
        raise
    return Served(label, server, tree)


def requests_of(queries: list[str], count: int) -> list[pb.SearchStreamRequest]:
    """``count`` sparse-only requests, cycling through ``queries``."""
    return [
        pb.SearchStreamRequest(
            request_id=str(i),
            search=pb.SearchRequest(
                query=queries[i % len(queries)], top_k=10, mode=pb.RETRIEVAL_MODE_SPARSE
            ),
        )
        for i in range(count)
    ]


def _checked(answer: pb.SearchStreamResponse) -> None:
    if answer.WhichOneof("result") != "response":
        raise SystemExit(f"request {answer.request_id} failed: {answer.error}")


def pipelined(
    stub: search_pb2_grpc.SearchServiceStub, requests: list[pb.SearchStreamRequest]
) -> int:
    """Every request sent at once on one stream; returns the number of answers read."""
    answered = 0
    for answer in stub.SearchStream(iter(requests)):
        _checked(answer)
        answered += 1
    return answered


def lock_step(
    stub: search_pb2_grpc.SearchServiceStub, requests: list[pb.SearchStreamRequest]
) -> int:
    """One request at a time on one stream, each sent once the previous one is answered."""
    outbox: queue.Queue[pb.SearchStreamRequest | None] = queue.Queue()

    def sent() -> Iterator[pb.SearchStreamRequest]:
        while (request := outbox.get()) is not None:
            yield request

    stream = stub.SearchStream(sent())
    answered = 0
    for request in requests:
        outbox.put(request)
        answer = next(stream)
        if answer.request_id != request.request_id:
            raise SystemExit(f"answer {answer.request_id} for request {request.request_id}")
        _checked(answer)
        answered += 1
    outbox.put(None)
    for _ in stream:
        pass
    return answered


def measure(served: Served, client: str, requests: list[pb.SearchStreamRequest]) -> StreamRun:
    """One stream of ``requests`` to ``served`` with ``client``'s pattern."""
    run = pipelined if client == "pipelined" else lock_step
    with grpc.insecure_channel(served.process.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        run(stub, requests[:WARMUP_REQUESTS])  # the connection and the server's caches
        cpu_before = served.process.cpu_seconds()
        began = time.perf_counter()
        answers = run(stub, requests)
        seconds = time.perf_counter() - began
        cpu = served.process.cpu_seconds() - cpu_before
    if answers != len(requests):
        raise SystemExit(f"{served.label}: {answers} answers to {len(requests)} requests")
    return StreamRun(answers, seconds, cpu)


def calls_per_answer(
    trees: dict[str, Path], index: Path, requests: list[pb.SearchStreamRequest], port: int
) -> dict[str, dict[str, float]]:
    """Python function calls per answer on each server's main thread (its event loop, where
    the stream's reading, admission, sparse-only searches and writing run), per client.

    Each (tree, client) is served twice under cProfile, answering one stream of
    `CALLS_SHORT` and one of all ``requests``: the difference of the two totals over the
    difference of the answers leaves out start-up, warm-up and shutdown. Counts, not times;
    yet the pipelined count moves with timing too (how many answers one turn of the event
    loop handles), the lock-step one barely (each answer takes its own turns).
    """
    counts: dict[str, dict[str, float]] = {client: {} for client in CLIENTS}
    stats = WORK / "stream-writing.prof"
    for client in CLIENTS:
        for label, tree in trees.items():
            totals = []
            for count in (CALLS_SHORT, len(requests)):
                served = start(label, tree, index, port, profile=stats)
                try:
                    measure(served, client, requests[:count])
                finally:
                    served.process.stop()
                totals.append(_total_calls(stats))
            counts[client][label] = (totals[1] - totals[0]) / (len(requests) - CALLS_SHORT)
    return counts


def _total_calls(stats: Path) -> int:
    """Function calls (recursive ones included) in a cProfile statistics file."""
    return sum(calls for _, calls, *_ in pstats.Stats(str(stats)).stats.values())  # type: ignore[attr-defined]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every round's figures per (client, server); servers stopped on the way out."""
    old = Path(args.old_tree) if args.old_tree else old_tree(args.old_ref)
    index = sparse_index(args.collection)
    queries = [text for _, text in load_queries(args.collection)]
    requests = requests_of(queries, args.requests)
    environment = env_summary()
    trees = {"old": old, "new": Path(args.new_tree) if args.new_tree else REPO}
    servers: dict[str, Served] = {}
    rounds: list[dict[str, dict[str, StreamRun]]] = []
    try:
        for offset, (label, tree) in enumerate(trees.items()):
            servers[label] = start(label, tree, index, args.port + offset)
        for number in range(args.rounds):
            order = ("old", "new") if number % 2 == 0 else ("new", "old")
            this: dict[str, dict[str, StreamRun]] = {client: {} for client in CLIENTS}
            for client in CLIENTS:
                for label in order:
                    this[client][label] = measure(servers[label], client, requests)
            rounds.append(this)
            print(f"round {number + 1}: " + summary_line(this), flush=True)
    finally:
        for served in servers.values():
            served.process.stop()
    calls = calls_per_answer(trees, index, requests, args.port) if args.calls else {}
    environment["load_avg_at_end"] = _load()
    return {
        "calls": calls,
        "env": environment,
        "trees": {label: _describe(tree) for label, tree in trees.items()},
        "index": str(index),
        "requests": args.requests,
        "rounds": rounds,
    }


def _describe(tree: Path) -> str:
    return f"{tree} at {tree_commit(tree) or 'an unknown commit'}"


def summary_line(one_round: dict[str, dict[str, StreamRun]]) -> str:
    return "; ".join(
        f"{client} old {runs['old'].per_s:.0f}/s {runs['old'].cpu_ms_per_answer:.3f} ms, "
        f"new {runs['new'].per_s:.0f}/s {runs['new'].cpu_ms_per_answer:.3f} ms"
        for client, runs in one_round.items()
    )


def report(data: dict[str, object]) -> str:
    """The results as markdown (figures only: conclusions are written beside them)."""
    env = data["env"]
    trees = data["trees"]
    rounds = data["rounds"]
    assert isinstance(env, dict) and isinstance(trees, dict) and isinstance(rounds, list)
    lines = [
        f"Machine: {env['cpus']} CPUs ({env['cpu']}), Python {env['python']}; load average "
        f"{env['load_avg_at_start']} at the start, {env['load_avg_at_end']} at the end.",
        "",
        f"- old: {trees['old']}",
        f"- new: {trees['new']}",
        f"- index: {data['index']}; {data['requests']} sparse-only requests per stream "
        f"(top_k 10), after {WARMUP_REQUESTS} warm-up requests on the same connection",
        "",
        "| round | client | old answers/s | new answers/s | new/old | old CPU ms/answer "
        "| new CPU ms/answer | new/old |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, one_round in enumerate(rounds, start=1):
        for client in CLIENTS:
            old, new = one_round[client]["old"], one_round[client]["new"]
            lines.append(_row(str(number), client, [old], [new]))
    for client in CLIENTS:
        olds = [one_round[client]["old"] for one_round in rounds]
        news = [one_round[client]["new"] for one_round in rounds]
        lines.append(_row("**median**", client, olds, news))
    lines += [
        "",
        "Median of the per-round new/old ratios (each round's pair ran back to back):",
        "",
    ]
    for client in CLIENTS:
        pairs = [(one_round[client]["old"], one_round[client]["new"]) for one_round in rounds]
        rate = statistics.median(new.per_s / old.per_s for old, new in pairs)
        cpu = statistics.median(new.cpu_ms_per_answer / old.cpu_ms_per_answer for old, new in pairs)
        lines.append(f"- {client}: answers/s {rate:.3f}, CPU ms per answer {cpu:.3f}")
    calls = data["calls"]
    assert isinstance(calls, dict)
    if calls:
        lines += [
            "",
            "Python function calls per answer on the server's event-loop thread (cProfile; "
            f"a stream of {data['requests']} requests minus one of {CALLS_SHORT}):",
            "",
        ]
        for client, per_tree in calls.items():
            lines.append(
                f"- {client}: old {per_tree['old']:.1f}, new {per_tree['new']:.1f} "
                f"(new/old {per_tree['new'] / per_tree['old']:.3f})"
            )
    return "\n".join(lines) + "\n"


def _row(label: str, client: str, olds: list[StreamRun], news: list[StreamRun]) -> str:
    old_rate = statistics.median(run.per_s for run in olds)
    new_rate = statistics.median(run.per_s for run in news)
    old_cpu = statistics.median(run.cpu_ms_per_answer for run in olds)
    new_cpu = statistics.median(run.cpu_ms_per_answer for run in news)
    return (
        f"| {label} | {client} | {old_rate:.0f} | {new_rate:.0f} | {new_rate / old_rate:.3f} "
        f"| {old_cpu:.3f} | {new_cpu:.3f} | {new_cpu / old_cpu:.3f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--old-tree", help="a checkout of the old commit (default: --old-ref)")
    parser.add_argument("--new-tree", help="the checkout to compare (default: this one)")
    parser.add_argument("--collection", type=Path, default=SHARED / "adi")
    parser.add_argument("--requests", type=int, default=2000, help="requests per stream")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=51500, help="old's port; new's is next")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="also count Python calls per answer under cProfile (4 server starts per tree)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write the markdown here (default: print it)",
    )
    args = parser.parse_args()
    text = report(run(args))
    if args.out is not None:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
