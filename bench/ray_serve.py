"""Sharded serving on Ray, measured in one run (a few minutes on 2 cores).

Through real servers and ghz (hybrid SciFact test queries, top_k 10):

* q/s and p50/p99 of the same documents served seven ways: one index (today's server), one
  and three shards in this process (`serve --index SHARDED` without Ray), one and three
  shards on Ray (`--ray local`: each shard a Ray actor), the front calling its replicas on
  its direct lines (the default) or by Ray actor tasks (``--ray-transport ray``). p50 at
  concurrency 1 on Ray minus the same shards' p50 in this process is the cost Ray's hop adds
  per query (and minus the unsharded p50, what sharding and Ray add together).
  ``--rounds N`` (3): every setup N times, the setups taking turns, each figure the median
  (a single 8 s point moves by ±1.5 ms here).
* ghz at concurrency 4 on three shards with ``--replicas 2`` while one replica is SIGKILLed:
  failed requests (0 expected) and how long Ray took to restart it.
* The hop itself: a direct line, a plain actor call, a Ray Serve handle (`bench.ray_hop`),
  unless ``--no-hop``.

Writes bench/results/<date>-ray-serve.md.

``--baseline-tree DIR`` (a checkout of another commit, e.g. ``git worktree add DIR main``):
each setup is measured on that tree's server too, interleaved with this tree's (setup by
setup, alternating which goes first), so a change is compared within one run on the same
machine load (``--rounds N``: N times; medians); the replica kill runs on this tree only.
Writes <date>-ray-serve-compare.md.

    python -m bench.ray_serve [--index DIR] [--seconds 8] [--baseline-tree DIR --rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from bench.common import (
    REPO,
    RESULTS,
    env_summary,
    load_queries,
    process_cpu_s,
    start_bench_server,
    tree_commit,
)
from bench.load import SEARCH, LoadPoint, run_ghz, search_data
from hybridsearch.harness import ServerProcess, descendants
from hybridsearch.sharding.layout import shard_dir_name

#: A sharded server on Ray whose front calls its replicas by Ray actor tasks (the default is
#: a direct line to each, `sharding.replica_line`).
RAY_TASKS = ("--ray", "local", "--ray-transport", "ray")
SHARED = Path(os.environ.get("HYBRIDSEARCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def scifact_index(model: Path, cache: Path) -> Path:
    """The SciFact hybrid index of the eval cache (encoded on first use: minutes)."""
    from hybridsearch.config import Device  # noqa: PLC0415
    from hybridsearch.engine.loader import encoder_info_of, load_query_encoder  # noqa: PLC0415
    from hybridsearch.eval.index_cache import cached_index  # noqa: PLC0415

    encoder = load_query_encoder(model, Device.CPU)
    corpus = SHARED / "scifact" / "corpus.jsonl"
    return cached_index(corpus, encoder, encoder_info_of(encoder), cache, progress=True)


def replica_pids(server: ServerProcess) -> list[int]:
    """The shard replicas' processes (Ray names an actor's worker ``ray::ShardReplica``)."""
    return sorted(p for p, cmd in descendants(server.process.pid).items() if "ShardReplica" in cmd)


@dataclasses.dataclass
class Setup:
    name: str
    index: Path
    flags: tuple[str, ...]
    latency: LoadPoint | None = None
    throughput: LoadPoint | None = None
    env: dict[str, str] | None = None  # the server's environment (a baseline tree's)
    cpu_ms: float | None = None  # CPU per request at c=1: the server and every process below
    front_cpu_ms: float | None = None  # CPU per request at c=1: the server process alone


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and the processes below it (the
    Ray processes and shard replicas a server started)."""
    return sum(process_cpu_s(p) for p in (pid, *descendants(pid)))


def tree_env(tree: Path) -> dict[str, str]:
    """This process's environment with ``tree``'s server package first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tree.resolve() / "server"), env.get("PYTHONPATH", "")) if p
    )
    return env


def wait_gone(pids: Iterable[int], timeout_s: float = 60.0) -> None:
    """Wait until ``pids`` have exited (a stopped server's Ray processes), so that the next
    setup is not measured while they shut down."""
    waiting = set(pids)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        waiting = {p for p in waiting if _running(p)}
        time.sleep(0.2)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie is done


def measure(setup: Setup, model: Path, data: list[dict[str, object]], args: argparse.Namespace,
            work: Path) -> None:  # fmt: skip
    log = work / f"{setup.name}{'-baseline' if setup.env else ''}.log"
    server = start_bench_server(setup.index, model, log, *setup.flags, env=setup.env)
    try:
        run_ghz(server.address, "warm", SEARCH, data, concurrency=4, duration_s=2, work=work)
        cpu_before = tree_cpu_s(server.process.pid)
        front_before = process_cpu_s(server.process.pid)
        setup.latency = run_ghz(
            server.address, setup.name, SEARCH, data,
            concurrency=1, duration_s=args.seconds, work=work,
        )  # fmt: skip
        used = tree_cpu_s(server.process.pid) - cpu_before
        front = process_cpu_s(server.process.pid) - front_before
        setup.cpu_ms = 1000 * used / max(setup.latency.requests, 1)
        setup.front_cpu_ms = 1000 * front / max(setup.latency.requests, 1)
        setup.throughput = run_ghz(
            server.address, setup.name, SEARCH, data,
            concurrency=args.concurrency, duration_s=args.seconds, work=work,
        )  # fmt: skip
    finally:
        below = descendants(server.process.pid)
        server.stop()
        wait_gone(below)
    tree = "baseline" if setup.env else "this tree"
    print(f"{setup.name} ({tree}): c1 {setup.latency} cpu_ms {setup.cpu_ms:.2f}\n"
          f"  c{args.concurrency} {setup.throughput}", flush=True)  # fmt: skip


@dataclasses.dataclass
class KillRun:
    load: LoadPoint
    killed_pid: int
    restarted_s: float | None


def kill_under_load(sharded: Path, model: Path, data: list[dict[str, object]],
                    args: argparse.Namespace, work: Path) -> KillRun:  # fmt: skip
    flags = ("--ray", "local", "--replicas", "2")
    server = start_bench_server(sharded, model, work / "kill.log", *flags)
    try:
        before = replica_pids(server)
        result: list[LoadPoint] = []

        def load() -> None:
            point = run_ghz(
                server.address, "kill", SEARCH, data,
                concurrency=4, duration_s=args.kill_seconds, work=work,
            )  # fmt: skip
            result.append(point)

        ghz = threading.Thread(target=load)
        ghz.start()
        time.sleep(args.kill_seconds / 3)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        restarted: float | None = None
        while time.monotonic() - killed_at < 60:
            now = replica_pids(server)
            if victim not in now and len(now) == len(before):
                restarted = time.monotonic() - killed_at
                break
            time.sleep(0.2)
        ghz.join()
    finally:
        server.stop()
    print(f"kill: {result[0]}; restarted in {restarted}", flush=True)
    return KillRun(result[0], victim, restarted)


def ray_hop(shard: Path, model: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ray_hop", "--calls", "300", "--in-flight", "32",
         "--shard", str(shard), "--model", str(model)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    # Ray's own log lines ("(raylet) Task ServeController... failed") are not the figures.
    return "\n".join(line for line in done.stdout.splitlines() if "(raylet)" not in line).strip()


def report(setups: list[Setup], kill: KillRun, hop: str, args: argparse.Namespace,
           docs: int, *, measured: list[list[Setup]]) -> str:  # fmt: skip
    env = env_summary()
    base = setups[0].latency
    assert base is not None
    lines = [
        f"# Sharded serving on Ray: {args.label}",
        "",
        f"`python -m bench.ray_serve` on {env['cpus']} CPUs ({env['cpu']}), commit "
        f"{env['commit']}, load average at start {args.load_start}, when writing "
        f"{env['load_avg_at_start']}. SciFact "
        f"({docs} documents), its {len(args.queries)} test queries round robin, hybrid, "
        f"top_k 10, through gRPC with ghz; {args.seconds:g} s per point; {args.rounds} "
        "round(s), the setups taking turns (each round starting with the next one), each "
        "figure the median over the rounds.",
        "",
        f"| served as | p50 ms (c=1) | p99 ms (c=1) | q/s (c=1) | q/s (c={args.concurrency}) "
        f"| p50 ms (c={args.concurrency}) | p99 ms (c={args.concurrency}) | hop p50 ms "
        "| Ray's hop p50 ms | CPU ms/query (c=1) | front CPU ms/query (c=1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    in_process = {s.index: s.latency for s in setups if not s.flags}
    for s in setups:
        assert s.latency is not None and s.throughput is not None
        direct = in_process.get(s.index) if s.flags else None
        ray_hop = f"{s.latency.p50_ms - direct.p50_ms:+.1f}" if direct else "–"
        lines.append(
            f"| {s.name} | {s.latency.p50_ms:.1f} | {s.latency.p99_ms:.1f} | "
            f"{s.latency.qps:.0f} | {s.throughput.qps:.0f} | {s.throughput.p50_ms:.1f} | "
            f"{s.throughput.p99_ms:.1f} | {s.latency.p50_ms - base.p50_ms:+.1f} | {ray_hop} | "
            f"{s.cpu_ms or 0.0:.1f} | {s.front_cpu_ms or 0.0:.1f} |"
        )
    errors = sum(
        s.latency.errors + s.throughput.errors for s in setups if s.latency and s.throughput
    )
    k = kill.load
    restarted = f"{kill.restarted_s:.1f} s" if kill.restarted_s is not None else "not within 60 s"
    lines += [
        "",
        f'Errors over these runs: {errors}. "hop p50" is the p50 at concurrency 1 minus the '
        "unsharded server's; \"Ray's hop\": minus the same shards' served in this process. "
        "CPU ms/query: CPU time of the server and every process below it "
        "(Ray's and the shard replicas) during the concurrency-1 point, per request; front: "
        "the server process alone (what a front on its own machine would spend).",
        "",
        "Each setup's p50 at concurrency 1, round by round (ms):",
        "",
        *(
            f"- {runs[0].name}: " + ", ".join(f"{s.latency.p50_ms:.1f}" for s in runs if s.latency)
            for runs in measured
        ),
        "",
        "## A replica SIGKILLed under load (`--replicas 2`, 3 shards)",
        "",
        f"ghz at concurrency 4 for {args.kill_seconds:g} s; replica process {kill.killed_pid} "
        f"SIGKILLed a third of the way in: {k.requests} requests, **{k.errors} failed** "
        f"({k.error_kinds or 'none'}), {k.qps:.0f} q/s, p50 {k.p50_ms:.1f} ms, p99 "
        f"{k.p99_ms:.1f} ms. Ray restarted the replica in {restarted} (a new process); "
        "the front routes back to it by itself.",
        "",
        "## The hop: a direct line, a plain actor call, a Ray Serve handle "
        "(`python -m bench.ray_hop`)",
        "",
        "```",
        hop or "(skipped: --no-hop)",
        "```",
        "",
    ]
    return "\n".join(lines)


def _median_setup(runs: list[Setup]) -> Setup:
    """One setup's runs as one: each figure the median over them."""
    return dataclasses.replace(
        runs[0],
        latency=_median_point([s.latency for s in runs if s.latency]),
        throughput=_median_point([s.throughput for s in runs if s.throughput]),
        cpu_ms=statistics.median(s.cpu_ms or 0.0 for s in runs),
        front_cpu_ms=statistics.median(s.front_cpu_ms or 0.0 for s in runs),
    )


def _median_point(points: list[LoadPoint]) -> LoadPoint:
    """One point per field: the median over rounds (errors: the sum)."""
    if len(points) == 1:
        return points[0]
    return dataclasses.replace(
        points[0],
        requests=sum(p.requests for p in points),
        qps=statistics.median(p.qps for p in points),
        p50_ms=statistics.median(p.p50_ms for p in points),
        p95_ms=statistics.median(p.p95_ms for p in points),
        p99_ms=statistics.median(p.p99_ms for p in points),
        errors=sum(p.errors for p in points),
    )


def compare_report(rounds: list[list[tuple[Setup, Setup]]], baseline: str,
                   args: argparse.Namespace, docs: int, load_end: str) -> str:  # fmt: skip
    """Before (``baseline``) and after (this tree), measured interleaved in one run; each
    figure the median over the rounds."""
    env = env_summary()
    c = args.concurrency
    rows = []
    for i in range(len(rounds[0])):
        cells = []
        for side in (0, 1):
            runs = [r[i][side] for r in rounds]
            cells.append(
                (
                    _median_point([s.latency for s in runs if s.latency]),
                    _median_point([s.throughput for s in runs if s.throughput]),
                )
            )
        cpu = [statistics.median(r[i][side].cpu_ms or 0.0 for r in rounds) for side in (0, 1)]
        front = [
            statistics.median(r[i][side].front_cpu_ms or 0.0 for r in rounds) for side in (0, 1)
        ]
        rows.append((rounds[0][i][1].name, cells, cpu, front))
    base_before, base_after = rows[0][1][0][0], rows[0][1][1][0]
    cpu_base = rows[0][2]
    lines = [
        f"# Sharded serving on Ray, before and after: {args.label}",
        "",
        f"`python -m bench.ray_serve --baseline-tree` on {env['cpus']} CPUs ({env['cpu']}): "
        f"before = {baseline}, after = {env['commit']}; each setup measured on both servers "
        "back to back (alternating which went first), so both see the same machine load; "
        f"{len(rounds)} round(s), each figure the median over them. Load average at start "
        f"{args.load_start}, at the end {load_end} (the machine is shared with other work). "
        f"SciFact ({docs} documents), its {len(args.queries)} test queries round robin, "
        f"hybrid, top_k 10, through gRPC with ghz; {args.seconds:g} s per point.",
        "",
        f"| served as | p50 ms c=1 before | after | p99 ms c=1 before | after "
        f"| q/s c={c} before | after | hop p50 ms before | after "
        "| CPU ms/query c=1 before | after | hop CPU ms before | after "
        "| front CPU ms/query c=1 before | after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    errors = 0
    for name, ((b, bt), (a, at)), (cb, ca), (fb, fa) in rows:
        errors += b.errors + bt.errors + a.errors + at.errors
        lines.append(
            f"| {name} | {b.p50_ms:.1f} | {a.p50_ms:.1f} | {b.p99_ms:.1f} | "
            f"{a.p99_ms:.1f} | {bt.qps:.0f} | {at.qps:.0f} | "
            f"{b.p50_ms - base_before.p50_ms:+.1f} | {a.p50_ms - base_after.p50_ms:+.1f} | "
            f"{cb:.1f} | {ca:.1f} | {cb - cpu_base[0]:+.1f} | {ca - cpu_base[1]:+.1f} | "
            f"{fb:.1f} | {fa:.1f} |"
        )
    lines += [
        "",
        f'Errors over these runs: {errors}. "hop p50" is a setup\'s p50 at concurrency 1 '
        "minus the same tree's unsharded p50 (the first row). CPU ms/query: CPU time of the "
        "server and every process below it (Ray's and the shard replicas) during the "
        "concurrency-1 point, per request (less sensitive to other work on the machine than "
        "latency; Ray's own daemons add a little while idle); hop CPU: minus the unsharded "
        "server's. Front CPU: the server process alone.",
        "",
        "Each round's p50 at concurrency 1, before / after:",
        "",
    ]
    for r, pairs in enumerate(rounds, 1):
        shown = [
            f"{before.latency.p50_ms:.1f} / {after.latency.p50_ms:.1f}"
            for before, after in pairs
            if before.latency and after.latency
        ]
        lines.append(f"- round {r}: " + "; ".join(shown))
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="a hybrid index (default: SciFact, cached)")
    parser.add_argument("--model", type=Path, default=REPO / "var/models/all-MiniLM-L6-v2")
    parser.add_argument("--cache", type=Path, default=REPO / "var/eval-indexes")
    parser.add_argument("--seconds", type=float, default=8.0, help="per ghz point")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kill-seconds", type=float, default=15.0)
    parser.add_argument("--no-hop", action="store_true", help="skip bench.ray_hop")
    parser.add_argument("--label", default=datetime.date.today().isoformat())
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--baseline-tree", type=Path, help="also measure this checkout, interleaved (see above)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every setup, in turn (medians)"
    )
    args = parser.parse_args()
    args.load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    from hybridsearch.sharding.split import split_index  # noqa: PLC0415
    from hybridsearch.storage.manifest import load_manifest  # noqa: PLC0415

    index = args.index or scifact_index(args.model, args.cache)
    args.queries = [text for _, text in load_queries(SHARED / "scifact")]
    data = search_data(args.queries, "hybrid")
    work = Path(tempfile.mkdtemp(prefix="ray-serve-bench-"))
    try:
        split_index(index, work / "shards-1", 1)
        split_index(index, work / "shards-3", 3)
        setups = [
            Setup("1 index (no shards, no Ray)", index, ()),
            Setup("1 shard, in process (no Ray)", work / "shards-1", ()),
            Setup("1 shard on Ray", work / "shards-1", ("--ray", "local")),
            Setup("1 shard on Ray, Ray tasks", work / "shards-1", RAY_TASKS),
            Setup("3 shards, in process (no Ray)", work / "shards-3", ()),
            Setup("3 shards on Ray", work / "shards-3", ("--ray", "local")),
            Setup("3 shards on Ray, Ray tasks", work / "shards-3", RAY_TASKS),
        ]
        docs = load_manifest(index).document_count
        if args.baseline_tree is not None:
            baseline_env = tree_env(args.baseline_tree)
            rounds = []
            for r in range(args.rounds):
                pairs = []
                for i, setup in enumerate(setups):
                    before = dataclasses.replace(setup, env=baseline_env)
                    after = dataclasses.replace(setup)
                    for one in (before, after) if (i + r) % 2 == 0 else (after, before):
                        measure(one, args.model, data, args, work)
                    pairs.append((before, after))
                rounds.append(pairs)
            load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
            name = "ray-serve-compare"
            baseline = tree_commit(args.baseline_tree) or args.baseline_tree.name
            text = compare_report(rounds, baseline, args, docs, load_end)
        else:
            measured: list[list[Setup]] = [[] for _ in setups]
            for r in range(args.rounds):  # each round in another order: all see the same load
                for i in [(r + k) % len(setups) for k in range(len(setups))]:
                    one = dataclasses.replace(setups[i])
                    measure(one, args.model, data, args, work)
                    measured[i].append(one)
            setups = [_median_setup(runs) for runs in measured]
            kill = kill_under_load(work / "shards-3", args.model, data, args, work)
            one_shard = work / "shards-1" / shard_dir_name(0)
            hop = "" if args.no_hop else ray_hop(one_shard, args.model)
            name = "ray-serve"
            text = report(setups, kill, hop, args, docs, measured=measured)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.label}-{name}.md"
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
