"""`make bench`: load, compute limit, gRPC overhead, peers and scale, into one results file.

    python bench/run_all.py [--quick] [--stages load,limit,peers,scale] [--scale-sizes ...]

Writes bench/results/<date>.md and PNG plots beside it; raw measurements go to
bench/.work/measurements/*.json, so `--stages report` rebuilds the report from them.
Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# In-process measurements use what `hybridsearch serve` uses: one BLAS thread (see cli.main).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from common import REPO, RESULTS, WORK, cli, env_summary, load_queries, start_server  # noqa: E402

MEASUREMENTS = WORK / "measurements"
CONCURRENCY = (1, 8, 32, 64)
ALL_STAGES = ("load", "limit", "peers", "scale", "report")


def save(name: str, data: object) -> None:
    MEASUREMENTS.mkdir(parents=True, exist_ok=True)
    (MEASUREMENTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))


def load(name: str) -> object | None:
    path = MEASUREMENTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def scifact_index(args: argparse.Namespace) -> Path:
    """SciFact with vectors, built once into bench/.work/indexes/scifact."""
    out = WORK / "indexes" / "scifact"
    if not (out / "manifest.json").is_file():
        print("== building the SciFact index (encodes 5k documents)", flush=True)
        corpus = args.shared_data / "scifact" / "corpus.jsonl"
        cli("index", "--corpus", str(corpus), "--out", str(out), "--model", str(args.model),
            "--no-progress", "--force")
    return out


def stage_load(args: argparse.Namespace, index: Path, queries: list[str]) -> None:
    from load import BATCH, SEARCH, batch_data, ensure_ghz, run_ghz, search_data

    ensure_ghz()
    work = WORK / "ghz"
    points = []
    profile: dict[str, object] = {}
    variants = [("default", ()), ("no-batching", ("--encode-batching", "false")),
                ("batch32", ("--max-batch-size", "32", "--max-batch-tokens", "8192")),
                ("spinning", ("--encoder-spinning", "true")),
                ("workers-2", ("--workers", "2", "--encoder-threads", "1")),
                ("depth100", ("--sparse-depth", "100", "--dense-depth", "100"))]
    if args.variants:
        wanted = set(args.variants.split(","))
        variants = [v for v in variants if v[0] in wanted]
        previous = load("load")
        if isinstance(previous, dict):  # keep the other variants' points from the last run
            points = [p for p in previous["points"] if p["variant"] not in wanted]
            profile = previous.get("profile") or {}
    rss: dict[str, object] = {}
    if args.variants and isinstance(load("load"), dict):
        rss = dict(load("load").get("rss") or {})  # type: ignore[union-attr]
    for variant, flags in variants:
        server = start_server(index, args.model, WORK / f"server-{variant}.log", *flags)
        try:
            print(f"== load: server {variant} on {server.address}", flush=True)
            warm = search_data(queries, "hybrid")
            run_ghz(server.address, "warmup", SEARCH, warm, 8, 2, work)
            if variant == "default":
                plan = [(m, SEARCH, search_data(queries, m), 1) for m in ("hybrid", "sparse", "dense")]
                plan.append(("batch8", BATCH, batch_data(queries, 8), 8))
                levels = CONCURRENCY
            else:
                plan = [("hybrid", SEARCH, search_data(queries, "hybrid"), 1)]
                levels = (1, 32)
            for scenario, call, data, per_request in plan:
                for c in levels:
                    cpu_before = server.cpu_seconds()
                    point = run_ghz(server.address, scenario, call, data, c, args.duration, work,
                                    per_request)
                    cpu = server.cpu_seconds() - cpu_before
                    queries_done = max(1, point.requests * per_request)
                    row = {"variant": variant, **point.to_json(),
                           "server_cpu_ms_per_query": cpu / queries_done * 1000}
                    points.append(row)
                    print(f"   {variant:12} {scenario:7} c{c:<3} {point.query_qps:8.1f} q/s "
                          f"p50 {point.p50_ms:7.2f} p99 {point.p99_ms:7.2f} ms "
                          f"errors {point.errors} cpu/q {row['server_cpu_ms_per_query']:.1f} ms",
                          flush=True)
            rss[variant] = server.rss_bytes()
            if variant == "default" and args.profile:
                profile = profile_server(server, queries, work)
        finally:
            server.stop()
        if variant == "default":
            rss["batcher_log"] = server.log_path.read_text()[-2000:]
    save("load", {"points": points, "rss": rss, "profile": profile})


def profile_server(server, queries: list[str], work: Path) -> dict[str, object]:  # noqa: ANN001
    """py-spy (when installed) samples the server under hybrid c32: top frames by self time."""
    from load import SEARCH, run_ghz, search_data

    pyspy = Path(sys.executable).with_name("py-spy")
    if not pyspy.exists():
        pyspy = Path(os.environ.get("PY_SPY", "py-spy"))
    raw = work / "profile-hybrid-c32.txt"
    try:
        spy = subprocess.Popen(
            [str(pyspy), "record", "--pid", str(server.process.pid), "--duration",
             str(int(args_duration())), "--rate", "100", "--threads", "--output",
             str(raw), "--format", "raw", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        print(f"   py-spy unavailable ({exc}); no profile", flush=True)
        return {}
    run_ghz(server.address, "profiled", SEARCH, search_data(queries, "hybrid"), 32,
            args_duration(), work)
    spy.wait(timeout=120)
    if not raw.is_file():
        return {}
    self_samples: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        leaf = frames[-1]
        n = int(count)
        total += n
        self_samples[leaf] = self_samples.get(leaf, 0) + n
    top = sorted(self_samples.items(), key=lambda kv: -kv[1])[:20]
    print(f"   profile: {raw}", flush=True)
    return {"total_samples": total, "top_self": top}


_DURATION = [8.0]


def args_duration() -> float:
    return _DURATION[0]


def stage_limit(args: argparse.Namespace, index: Path, qtexts: list[tuple[str, str]]) -> None:
    from hybridsearch.eval.collection import load_beir
    from inprocess import component_costs, engine_latency, ndcg10, open_engine

    queries = [t for _, t in qtexts]
    engine = open_engine(index, args.model)
    try:
        latency = {m: dataclasses.asdict(engine_latency(engine, queries, m, min_s=args.duration))
                   for m in ("hybrid", "sparse", "dense")}
        collection = load_beir(args.shared_data / "scifact", split="test")
        ndcg = {m: ndcg10(engine, qtexts, collection.qrels, m) for m in ("hybrid", "sparse", "dense")}
    finally:
        engine.close()
    stages = latency["hybrid"]["stages_us"]
    fusion_fetch_ms = (stages["fusion"] + stages["fetch"]) / 1000
    costs = component_costs(index, args.model, queries, (1, 8, 32), fusion_fetch_ms)
    limits = {
        m: {c: costs.limit_qps(m, min(c, 8)) for c in CONCURRENCY}
        for m in ("hybrid", "sparse", "dense")
    }
    cpu_limits = {c: costs.cores * 1000 / costs.cpu_ms_per_query(min(c, 8)) for c in CONCURRENCY}
    save("limit", {"engine": latency, "ndcg10": ndcg, "costs": dataclasses.asdict(costs),
                   "limits": limits, "cpu_limits_hybrid": cpu_limits,
                   "component_cpu_ms_hybrid": {c: costs.cpu_ms_per_query(min(c, 8))
                                               for c in CONCURRENCY}})


def stage_peers(args: argparse.Namespace, index: Path, qtexts: list[tuple[str, str]]) -> None:
    from hybridsearch.eval.collection import load_beir
    from hybridsearch.eval.metrics import evaluate
    from hybridsearch.eval.trec import read_trec_run

    subprocess.run([str(BENCH_DIR / "setup_peers.sh")], check=True)
    qfile = WORK / "peers" / "queries.json"
    qfile.parent.mkdir(parents=True, exist_ok=True)
    qfile.write_text(json.dumps(qtexts))
    collection = load_beir(args.shared_data / "scifact", split="test")
    results = {}
    for peer in ("pyserini", "lancedb"):
        python = WORK / f"{peer}-venv" / "bin" / "python"
        out = WORK / "peers" / f"{peer}.json"
        print(f"== peer {peer}", flush=True)
        done = subprocess.run(
            [str(python), str(BENCH_DIR / "peers" / f"{peer}_peer.py"), "--index", str(index),
             "--corpus", str(args.shared_data / "scifact" / "corpus.jsonl"), "--queries",
             str(qfile), "--model", str(args.model), "--work", str(WORK / "peers" / peer),
             "--out", str(out)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "OPENAI_API_KEY": "placeholder-not-used", "PYTHONPATH": ""},
        )
        if done.returncode != 0:
            print(f"   {peer} failed:\n{done.stderr[-3000:]}", flush=True)
            results[peer] = {"error": done.stderr[-1500:]}
            continue
        result = json.loads(out.read_text())
        for name, value in result.items():
            if isinstance(value, dict) and "run" in value:
                run = read_trec_run(value["run"])
                value["ndcg10"] = evaluate(run, collection.qrels)["nDCG@10"]
                print(f"   {peer} {name}: {value['qps']:.1f} q/s nDCG@10 {value['ndcg10']:.3f}",
                      flush=True)
        results[peer] = result
    save("peers", results)


def stage_scale(args: argparse.Namespace, qtexts: list[tuple[str, str]]) -> None:
    from load import SEARCH, ensure_ghz, run_ghz, search_data
    from scale import ScalePoint, build_synthetic, measure_inprocess, part_sizes, vocabulary

    from hybridsearch.loader import encoder_info_of, load_query_encoder
    from hybridsearch.config import Device

    info = encoder_info_of(load_query_encoder(args.model, Device.CPU))
    words, p = vocabulary(args.shared_data)
    queries = [t for _, t in qtexts][:200]
    subprocess.run(
        [sys.executable, str(BENCH_DIR / "ann_recall.py"), "--index", str(scifact_index(args)),
         "--model", str(args.model), "--collection", str(args.shared_data / "scifact"),
         "--out", str(MEASUREMENTS / "ann_recall.json")],
        check=True,
    )
    previous = load("scale") or {}
    points = dict(previous) if isinstance(previous, dict) else {}
    ensure_ghz()
    for n in args.scale_sizes:
        out = WORK / "indexes" / f"synthetic-{n}"
        print(f"== scale: {n} documents", flush=True)
        started = time.perf_counter()
        try:
            build_s, hnsw_s = build_synthetic(out, n, words, p, info)
        except MemoryError as exc:
            points[str(n)] = {"documents": n, "error": f"build ran out of memory: {exc}"}
            continue
        total, sparse, vectors, graph = part_sizes(out)
        point = ScalePoint(n, build_s, hnsw_s, total, sparse, vectors, graph)
        measure_inprocess(out, info, queries, point)
        server = start_server(out, args.model, WORK / f"server-scale-{n}.log")
        try:
            c1 = run_ghz(server.address, f"scale{n}", SEARCH, search_data(queries, "hybrid"), 1,
                         min(args.duration, 5), WORK / "ghz")
            point.grpc_hybrid_c1_p50_ms = c1.p50_ms
            point.server_rss_bytes = server.rss_bytes()
        finally:
            server.stop()
        points[str(n)] = dataclasses.asdict(point)
        print(f"   built in {build_s:.0f}+{hnsw_s:.0f} s, {total / 1e6:.0f} MB, "
              f"recall@10 {point.recall_at_10}, total {time.perf_counter() - started:.0f} s",
              flush=True)
        save("scale", points)
        if not args.keep_indexes:
            import shutil

            shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "var/models/all-MiniLM-L6-v2")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--stages", default=",".join(ALL_STAGES))
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load point")
    parser.add_argument("--quick", action="store_true", help="3 s points, scale 10k only")
    parser.add_argument(
        "--scale-sizes", default="10000,100000",
        help="synthetic corpus sizes; 1000000 works but its HNSW build takes hours on 2 cores",
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the py-spy profile of the server at hybrid c32")
    parser.add_argument("--keep-indexes", action="store_true")
    parser.add_argument("--variants", default="", help="load: only these server variants")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
        args.scale_sizes = "10000"
    args.scale_sizes = [int(s) for s in args.scale_sizes.split(",") if s]
    args.model = args.model.resolve()
    _DURATION[0] = args.duration
    stages = set(args.stages.split(","))
    unknown = stages - set(ALL_STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    save("env", {**env_summary(), "started": datetime.now(UTC).isoformat(timespec="seconds")})
    qtexts = load_queries(args.shared_data / "scifact")
    queries = [t for _, t in qtexts]
    index = scifact_index(args) if stages & {"load", "limit", "peers"} else None
    if "load" in stages:
        stage_load(args, index, queries)
    if "limit" in stages:
        stage_limit(args, index, qtexts)
    if "peers" in stages:
        stage_peers(args, index, qtexts)
    if "scale" in stages:
        stage_scale(args, qtexts)
    from report import write_report

    path = write_report(MEASUREMENTS, RESULTS)
    print(f"== results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
