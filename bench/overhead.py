"""Per-query server overhead: an old commit's server beside this tree's, in one run.

Through real servers and ghz (SciFact test queries, unary Search, top_k 10), on the same
index and model:

* q/s, p50 and server CPU ms per query of both servers for sparse and hybrid at each
  concurrency, the two taking turns within every round (their order alternating), medians
  over the rounds and the new/old ratios;
* the floor: an empty grpc.aio handler with one executor hop (`bench.bare_server`), ghz c1
  p50, measured in the same rounds;
* where the server CPU goes: py-spy samples each server under sparse c8 and hybrid c32 and
  every sample is put into one stage by its innermost recognised frame (see `STAGES`);
  each stage's share of the samples times the CPU per query measured over the same ghz run
  gives ms per query. CPU that py-spy cannot see (grpc's C threads, onnxruntime's own
  threads) is what the measured CPU has beyond the samples: "native/unsampled".

The old commit is checked out once into bench/.work/old-<ref> (a detached `git worktree`)
and served with its own ``server/`` on PYTHONPATH. Writes
bench/results/<date>-overhead.md, a PNG of the stage split and the raw JSON.

    python -m bench.overhead [--old-ref 06f823e] [--duration 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import REPO, RESULTS, WORK, env_summary, load_queries
from bench.inprocess import component_costs
from bench.load import SEARCH, run_ghz, scrape_encoder_batches, search_data
from hybridsearch.harness import CLI, ServerProcess, start_server

SHARED = Path(os.environ.get("HYBRIDSEARCH_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = Path(os.environ.get("HYBRIDSEARCH_MODEL_DIR", REPO / "var" / "models" / "all-MiniLM-L6-v2"))
OLD_REF = "06f823e"
PROFILED = (("sparse", 8), ("hybrid", 32))
BARE_KINDS = ("aio-hop", "aio", "sync")  # see bench.bare_server
# The aio-hop empty handler behind each tree's interceptors: what they cost alone.
INTERCEPTED = ("old", "new")
PROFILE_RATE = 200  # samples per second and thread

# (stage, predicate on one frame "function (path:line)"); a sample belongs to the stage of
# its innermost frame that matches one (leaf first), else to "other Python".
STAGES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("encoder (onnx)", lambda f: "/encoders/" in f),
    ("dense search", lambda f: "/dense/" in f or "dense_arm.py" in f or "batching.py" in f),
    ("BM25 (tantivy)", lambda f: "search_sparse" in f or "_sparse_arm" in f),
    ("fetch", lambda f: "fetch" in f and "tantivy_index.py" in f),
    ("fusion + ranking", lambda f: "/fusion/" in f or "ranking.py" in f or "ties.py" in f),
    ("response build", lambda f: "result_to_proto" in f or "_answer" in f or "to_proto" in f),
    ("request decode + resolve", lambda f: "decod" in f or "request.py" in f or "from_proto" in f),
    (
        "interceptors, metrics, logs",
        lambda f: any(
            name in f
            for name in (
                "interceptors.py",
                "observability.py",
                "admission.py",
                "auth.py",
                "errors.py",
                "handlers.py",
                "metrics.py",
                "prometheus_client",
                "/logging/",
                "logs.py",
            )
        ),
    ),
    ("engine (other)", lambda f: "/hybridsearch/engine/" in f or "/hybridsearch/sparse/" in f),
    (
        "grpc + asyncio + thread hop",
        lambda f: any(
            name in f
            for name in ("grpc", "asyncio", "concurrent/futures", "threading.py", "search_servicer")
        ),
    ),
)
NATIVE = "outside the GIL (tantivy, onnxruntime, grpc core)"
OTHER = "other Python"


@dataclasses.dataclass
class Served:
    """A server under test: its label, process and the tree it runs."""

    label: str
    process: ServerProcess
    tree: Path
    proto: bool = False  # described by the proto files (no reflection: the bare servers)


def old_tree(ref: str) -> Path:
    """A detached worktree of ``ref`` under bench/.work (made once)."""
    tree = WORK / f"old-{ref}"
    if not (tree / "server" / "hybridsearch").is_dir():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
    return tree


def start(label: str, tree: Path, index: Path, model: Path) -> Served:
    """``hybridsearch serve`` from ``tree``'s sources (INFO logs, a metrics port), SERVING."""
    env = {**os.environ, "PYTHONPATH": str(tree / "server")}
    log = WORK / f"overhead-server-{label}.log"
    server = start_server(
        "--index", str(index), "--model", str(model), "--log-level", "INFO",
        program=(*CLI, "serve"), log_path=log, metrics=True, env=env, cwd=tree,
    )  # fmt: skip
    server.wait_serving(timeout=600)
    return Served(label, server, tree)


def measure(
    served: Served, mode: str, c: int, queries: list[str], *, seconds: float, work: Path
) -> dict[str, float]:
    """One ghz run: q/s, p50, p99 and the server's CPU ms per query over it."""
    metrics = served.process.metrics_url if served.process.metrics_port else None
    batches_before = scrape_encoder_batches(metrics) if metrics else None
    cpu_before = served.process.cpu_seconds()
    point = run_ghz(
        served.process.address, f"{served.label}-{mode}", SEARCH, search_data(queries, mode),
        concurrency=c, duration_s=seconds, work=work, proto=served.proto,
    )  # fmt: skip
    cpu = served.process.cpu_seconds() - cpu_before
    row = {
        "qps": point.query_qps,
        "p50_ms": point.p50_ms,
        "p99_ms": point.p99_ms,
        "cpu_ms_per_query": cpu / max(1, point.requests) * 1000,
        "errors": float(point.errors),
        "requests": float(point.requests),
    }
    if metrics and batches_before:
        batches, texts = scrape_encoder_batches(metrics)
        if batches > batches_before[0]:
            row["mean_encoder_batch"] = (texts - batches_before[1]) / (batches - batches_before[0])
    print(
        f"   {served.label:13} {mode:6} c{c:<3} {row['qps']:8.1f} q/s p50 {row['p50_ms']:6.2f} "
        f"ms cpu/q {row['cpu_ms_per_query']:5.2f} ms errors {point.errors}",
        flush=True,
    )
    return row


def stage_of(stack: list[str]) -> str:
    """The stage of one sampled stack (frames root first)."""
    for frame in reversed(stack):
        for stage, matches in STAGES:
            if matches(frame):
                return stage
    return OTHER


def profile(
    served: Served, mode: str, c: int, queries: list[str], *, seconds: float, work: Path
) -> dict[str, object]:
    """py-spy over one ghz run: CPU ms per query by stage, and the top leaf frames."""
    pyspy = Path(sys.executable).with_name("py-spy")
    raw = work / f"profile-{served.label}-{mode}-c{c}.txt"
    spy = subprocess.Popen(
        [str(pyspy if pyspy.exists() else "py-spy"), "record", "--pid",
         str(served.process.process.pid), "--duration", str(int(seconds) + 1), "--rate",
         str(PROFILE_RATE), "--gil", "--format", "raw", "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    row = measure(served, mode, c, queries, seconds=seconds, work=work)
    spy.wait(timeout=120)
    stages: dict[str, float] = {}
    leaves: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines() if raw.is_file() else []:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        samples += n
        stage = stage_of(frames)
        stages[stage] = stages.get(stage, 0) + n
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
    queries_done = max(1.0, row["requests"])
    ms = {stage: n / PROFILE_RATE * 1000 / queries_done for stage, n in stages.items()}
    ms[NATIVE] = max(0.0, row["cpu_ms_per_query"] - sum(ms.values()))
    top = sorted(leaves.items(), key=lambda kv: -kv[1])[:15]
    return {**row, "stage_ms": ms, "samples": samples, "top_leaves": top, "raw": str(raw)}


def stages_of(profile: dict[str, object]) -> dict[str, float]:
    """A profile's ms per query by stage, scaled to the measured CPU when the samples add up
    to more: on an oversubscribed machine a thread the kernel preempted while it held the
    GIL still holds it, so GIL samples can exceed the CPU the process got."""
    stages: dict[str, float] = profile["stage_ms"]  # type: ignore[assignment]
    cpu = float(profile["cpu_ms_per_query"])  # type: ignore[arg-type]
    sampled = sum(v for k, v in stages.items() if k != NATIVE)
    if sampled <= cpu:
        return stages
    return {k: v * cpu / sampled for k, v in stages.items() if k != NATIVE} | {NATIVE: 0.0}


def _ratio(new: float, old: float) -> float:
    return new / old if old else float("nan")


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every measurement, as a JSON-able dict."""
    work = WORK / "overhead"
    work.mkdir(parents=True, exist_ok=True)
    queries = [t for _, t in load_queries(args.shared_data / "scifact")]
    trees = {"old": old_tree(args.old_ref), "new": REPO}
    servers: dict[str, Served] = {}
    bares: dict[str, Served] = {}
    samples: dict[str, list[dict[str, float]]] = {}
    profiles: dict[str, object] = {}
    env = {**env_summary(), "old_ref": args.old_ref}
    try:
        for label, tree in trees.items():
            servers[label] = start(label, tree, args.index, args.model)
            print(f"== overhead: {label} server ({tree}) on {servers[label].process.address}")
        bare = (sys.executable, "-m", "bench.bare_server")
        for kind in BARE_KINDS:
            process = start_server(program=(*bare, "--kind", kind), cwd=REPO)
            bares[kind] = Served(f"floor {kind}", process, REPO, proto=True)
        for label in INTERCEPTED:
            program = (*bare, "--kind", "aio-hop", "--interceptors")
            path = f"{trees[label] / 'server'}{os.pathsep}{REPO}"
            child_env = {**os.environ, "PYTHONPATH": path}
            process = start_server(program=program, cwd=REPO, env=child_env)
            bares[f"{label}-interceptors"] = Served(
                f"floor {label}-interceptors", process, REPO, proto=True
            )
        for served in servers.values():  # warm both (encoder, page cache, grpc channels)
            measure(served, "hybrid", 8, queries, seconds=2, work=work)
        for served in bares.values():
            measure(served, "sparse", 1, queries, seconds=1, work=work)
        for round_ in range(args.repeats):
            print(f"== overhead: round {round_ + 1} of {args.repeats}", flush=True)
            for served in bares.values():
                for c in (1, 8):
                    row = measure(served, "sparse", c, queries, seconds=args.duration, work=work)
                    samples.setdefault(f"{served.label} c{c}", []).append(row)
            order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
            for mode in args.modes:
                for c in args.concurrency:
                    for label in order:
                        row = measure(
                            servers[label], mode, c, queries, seconds=args.duration, work=work
                        )
                        samples.setdefault(f"{label} {mode} c{c}", []).append(row)
        if args.profile:
            print("== overhead: profiles (py-spy)", flush=True)
            for mode, c in PROFILED:
                for label in ("old", "new"):
                    profiles[f"{label} {mode} c{c}"] = profile(
                        servers[label], mode, c, queries, seconds=args.duration, work=work
                    )
        env["load_avg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        for served in [*servers.values(), *bares.values()]:
            served.process.stop(timeout=30)
    components: dict[str, float] = {}
    if args.components:
        print("== overhead: raw component costs (in process)", flush=True)
        costs = component_costs(args.index, {"full": (args.model, False)}, queries)
        components = {"cores": float(costs.cores)}
    points: dict[str, dict[str, float]] = {}
    for key, rows in samples.items():
        names = {name for r in rows for name in r if name != "errors"}
        points[key] = {
            name: float(np.median([r[name] for r in rows if name in r])) for name in names
        }
        mode = key.split()[1]
        if args.components and mode in ("sparse", "hybrid") and not key.startswith("floor"):
            need = costs.cpu_ms_per_query(mode, "full", points[key].get("mean_encoder_batch", 1))
            points[key]["components_cpu_ms"] = need
            points[key]["limit_qps"] = costs.limit_qps(
                mode, "full", points[key].get("mean_encoder_batch", 1)
            )
        points[key]["errors"] = sum(r["errors"] for r in rows)
        points[key]["qps_runs"] = [r["qps"] for r in rows]  # type: ignore[assignment]
    return {
        "env": env,
        "points": points,
        "floor_p50_ms": points.get("floor aio-hop c1", {}).get("p50_ms", float("nan")),
        "profiles": profiles,
        "components": components,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "concurrency": list(args.concurrency),
        "modes": list(args.modes),
    }


def stage_figure(profiles: dict[str, object], path: Path) -> None:
    """A stacked bar per profiled run: server CPU ms per query by stage."""
    import matplotlib  # noqa: PLC0415 (plots only; the backend is chosen before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = list(profiles)
    order = [s for s, _ in STAGES] + [OTHER, NATIVE]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottoms = np.zeros(len(names))
    cmap = plt.get_cmap("tab20")
    for i, stage in enumerate(order):
        values = np.array(
            [stages_of(profiles[n]).get(stage, 0.0) for n in names]  # type: ignore[arg-type]
        )
        if not values.any():
            continue
        ax.bar(names, values, bottom=bottoms, label=stage, color=cmap(i))
        bottoms += values
    ax.set_ylabel("server CPU ms per query")
    ax.set_title("Where the server's CPU goes, old vs new (py-spy samples × measured CPU)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _best(
    points: dict[str, dict[str, float]], label: str, mode: str
) -> tuple[int, dict[str, float]]:
    """The concurrency (and its point) where ``label``'s server answered ``mode`` fastest."""
    found = [(int(k.rsplit("c", 1)[1]), p) for k, p in points.items()
             if k.startswith(f"{label} {mode} c")]  # fmt: skip
    return max(found, key=lambda cp: cp[1]["qps"])


def targets(data: dict[str, object]) -> list[str]:
    """Issue 16's serving targets, met or missed, from this run."""
    points: dict[str, dict[str, float]] = data["points"]  # type: ignore[assignment]
    lines = ["## Targets (issue 16)", ""]

    def verdict(met: bool) -> str:
        return "**met**" if met else "**missed**"

    if "sparse" in data["modes"]:  # type: ignore[operator]
        c_new, new = _best(points, "new", "sparse")
        c_old, old = _best(points, "old", "sparse")
        lines.append(
            f"- sparse server CPU ≤ 1.0 ms per query: {verdict(new['cpu_ms_per_query'] <= 1.0)}"
            f" — {new['cpu_ms_per_query']:.2f} ms at c{c_new}, the best q/s (old "
            f"{old['cpu_ms_per_query']:.2f} at c{c_old}); every c: "
            + ", ".join(
                f"c{c} {points[f'new sparse c{c}']['cpu_ms_per_query']:.2f}"
                for c in data["concurrency"]  # type: ignore[attr-defined]
                if f"new sparse c{c}" in points
            )
        )
        ratio = new["qps"] / old["qps"]
        lines.append(
            f"- sparse q/s ≥ 2× the old server's, same run: {verdict(ratio >= 2.0)} — best "
            f"{new['qps']:.0f} (c{c_new}) vs {old['qps']:.0f} (c{c_old}) = {ratio:.2f}×"
        )
        one = points.get("new sparse c1")
        floor = float(data["floor_p50_ms"])  # type: ignore[arg-type]
        if one is not None:
            gap = one["p50_ms"] - floor
            lines.append(
                f"- sparse c1 p50 within 0.5 ms of the empty-handler floor: {verdict(gap <= 0.5)}"
                f" — {one['p50_ms']:.2f} ms vs floor {floor:.2f} ms (+{gap:.2f}; old "
                f"{points['old sparse c1']['p50_ms']:.2f})"
            )
    if "hybrid" in data["modes"] and data["components"]:  # type: ignore[operator]
        c_new, new = _best(points, "new", "hybrid")
        _, old = _best(points, "old", "hybrid")
        ratio = new["cpu_ms_per_query"] / new["components_cpu_ms"]
        share = new["qps"] / new["limit_qps"]
        old_ratio = old["cpu_ms_per_query"] / old["components_cpu_ms"]
        lines.append(
            f"- hybrid server CPU ≤ 1.3× the components' at the best concurrency: "
            f"{verdict(ratio <= 1.3)} — {ratio:.2f}× at c{c_new} "
            f"({new['cpu_ms_per_query']:.2f} vs {new['components_cpu_ms']:.2f} ms; old "
            f"{old_ratio:.2f}×)"
        )
        lines.append(
            f"- hybrid achieved ≥ 70 % of the compute limit: {verdict(share >= 0.7)} — "
            f"{share:.0%} ({new['qps']:.0f} of {new['limit_qps']:.0f} q/s at c{c_new}; old "
            f"{old['qps'] / old['limit_qps']:.0%})"
        )
    return lines


def report(data: dict[str, object], out: Path, figure: str | None) -> str:
    """The results page."""
    env: dict[str, str] = data["env"]  # type: ignore[assignment]
    points: dict[str, dict[str, float]] = data["points"]  # type: ignore[assignment]
    floor = float(data["floor_p50_ms"])  # type: ignore[arg-type]
    lines = [
        f"# Server overhead: {env['old_ref']} (old) vs {env['commit']} (new), one run",
        "",
        f"Machine: {env['cpus']} × {env['cpu']}, Python {env['python']}; load average "
        f"{env['load_avg_at_start']} at the start, {env.get('load_avg_at_end', '?')} at the "
        "end (the machine is shared with other sessions). SciFact test queries, unary Search, "
        f"top_k 10, ghz; {data['repeats']} rounds of {data['duration_s']:.0f} s per point, "
        "old and new taking turns (order alternating), medians. Command: "
        "`python -m bench.overhead` (`make bench` stage `overhead`).",
        "",
        f"Floor (empty grpc.aio handler, one executor hop, ghz c1 p50): **{floor:.2f} ms**. "
        "The empty handler three ways (`bench.bare_server --kind`): grpc.aio with the hop, "
        "grpc.aio answering on the loop, grpc's synchronous server (4 pool threads); and the "
        "first behind the old commit's interceptors (five) and this tree's (one), default "
        "settings (no tokens), metrics on:",
        "",
        "| empty handler | c1 p50 ms | c1 CPU ms/q | c8 q/s | c8 CPU ms/q |",
        "|---|---|---|---|---|",
    ]
    for kind in (*BARE_KINDS, *(f"{label}-interceptors" for label in INTERCEPTED)):
        one, eight = points.get(f"floor {kind} c1"), points.get(f"floor {kind} c8")
        if one is None or eight is None:
            continue
        lines.append(
            f"| {kind} | {one['p50_ms']:.2f} | {one['cpu_ms_per_query']:.2f} | "
            f"{eight['qps']:.0f} | {eight['cpu_ms_per_query']:.2f} |"
        )
    lines += [
        "",
        "| mode | c | old q/s | new q/s | ratio | old p50 ms | new p50 ms | old CPU ms/q "
        "| new CPU ms/q | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in data["modes"]:  # type: ignore[attr-defined]
        for c in data["concurrency"]:  # type: ignore[attr-defined]
            old, new = points.get(f"old {mode} c{c}"), points.get(f"new {mode} c{c}")
            if old is None or new is None:
                continue
            lines.append(
                f"| {mode} | {c} | {old['qps']:.0f} | {new['qps']:.0f} | "
                f"{_ratio(new['qps'], old['qps']):.2f}× | {old['p50_ms']:.2f} | "
                f"{new['p50_ms']:.2f} | {old['cpu_ms_per_query']:.2f} | "
                f"{new['cpu_ms_per_query']:.2f} | "
                f"{_ratio(new['cpu_ms_per_query'], old['cpu_ms_per_query']):.2f}× |"
            )
    if data["components"]:
        lines += [
            "",
            "Against the raw components (`bench.inprocess.component_costs`, this run, one "
            "thread each: tantivy top-10 for sparse; encoder at the mean batch the server "
            "formed + exact product + BM25 top-1000 + fusion for hybrid). Compute limit = "
            "cores × 1000 / component CPU ms; achieved = q/s ÷ limit.",
            "",
            "| server | mode | c | mean batch | components CPU ms/q | server CPU ms/q | "
            "server/components | limit q/s | achieved |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for mode in data["modes"]:  # type: ignore[attr-defined]
            for c in data["concurrency"]:  # type: ignore[attr-defined]
                for label in ("old", "new"):
                    p = points.get(f"{label} {mode} c{c}")
                    if p is None or "components_cpu_ms" not in p:
                        continue
                    batch = f"{p.get('mean_encoder_batch', 1):.1f}" if mode != "sparse" else "–"
                    lines.append(
                        f"| {label} | {mode} | {c} | {batch} | "
                        f"{p['components_cpu_ms']:.2f} | {p['cpu_ms_per_query']:.2f} | "
                        f"{p['cpu_ms_per_query'] / p['components_cpu_ms']:.2f}× | "
                        f"{p['limit_qps']:.0f} | {p['qps'] / p['limit_qps']:.0%} |"
                    )
    errors = sum(p["errors"] for key, p in points.items())
    lines += ["", f"Errors over every run: {errors:.0f}.", "", *targets(data), ""]
    profiles: dict[str, dict[str, object]] = data["profiles"]  # type: ignore[assignment]
    if profiles:
        order = [s for s, _ in STAGES] + [OTHER, NATIVE]
        names = list(profiles)
        lines += [
            "## Where the server CPU goes (ms per query, by stage)",
            "",
            "py-spy samples the server's Python threads at "
            f"{PROFILE_RATE} Hz during one ghz run; a sample belongs to the stage of its "
            "innermost recognised frame; samples ÷ rate ÷ queries = ms per query. "
            f"'{NATIVE}' is the CPU measured over that run beyond what the samples account "
            "for (grpc's C-core threads, onnxruntime's pool, py-spy's blind spots). Where the "
            "samples add up to more than the measured CPU (a thread preempted while holding "
            "the GIL still counts on a busy machine), the stages are scaled down to it.",
            "",
            "| stage | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for stage in order:
            values = [stages_of(profiles[n]).get(stage, 0.0) for n in names]
            if any(values):
                lines.append(f"| {stage} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
        totals = [float(profiles[n]["cpu_ms_per_query"]) for n in names]  # type: ignore[arg-type]
        lines.append("| **measured CPU** | " + " | ".join(f"**{v:.2f}**" for v in totals) + " |")
        qps = [float(profiles[n]["qps"]) for n in names]  # type: ignore[arg-type]
        lines.append("| q/s (profiled run) | " + " | ".join(f"{v:.0f}" for v in qps) + " |")
        if figure:
            lines += ["", f"![stages]({figure})"]
        lines += ["", "Top leaf frames (samples) per profiled run:", ""]
        for name in names:
            top = profiles[name]["top_leaves"][:8]  # type: ignore[index]
            lines.append(f"- {name}: " + "; ".join(f"`{f}` {n}" for f, n in top))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--index", type=Path, default=WORK / "indexes" / "scifact")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--shared-data", type=Path, default=SHARED)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per point")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--modes", default="sparse,hybrid")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--no-components",
        dest="components",
        action="store_false",
        help="skip the in-process component costs (compute limit, server/components ratio)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the page from --out's JSON"
    )
    parser.add_argument("--out", default=datetime.date.today().isoformat() + "-overhead")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.modes = args.modes.split(",")
    args.model = args.model.resolve()
    # --report-only: rebuild the page (and figure) from a run's saved JSON.
    saved = RESULTS / f"{args.out}.json"
    data = json.loads(saved.read_text()) if args.report_only else run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(data, indent=2, default=str))
    figure = f"{args.out}.png"
    drawn = bool(data["profiles"])
    if drawn:
        stage_figure(data["profiles"], RESULTS / figure)  # type: ignore[arg-type]
    path = RESULTS / f"{args.out}.md"
    path.write_text(report(data, path, figure if drawn else None))
    print(f"== results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
