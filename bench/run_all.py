"""`make bench`: load, compute limit, gRPC overhead, peers and scale, into one results file.

    python -m bench.run_all [--quick]
        [--stages load,limit,peers,scale,bm25-scale,filters,ray-build,ray-serve,adaptive,overhead,
                  lucene,index]
                            [--scale-sizes ...] [--device auto|cpu|cuda]

Writes bench/results/<date>.md and PNG plots beside it; raw measurements go to
bench/.work/measurements/*.json, so `--stages report` rebuilds the report from them.
Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.common import (
    REPO,
    RESULTS,
    WORK,
    env_summary,
    load_queries,
    start_bench_server,
)
from bench.inprocess import component_costs, engine_latency, ndcg10, open_engine
from bench.load import (
    BATCH,
    SEARCH,
    batch_data,
    ensure_ghz,
    run_ghz,
    scrape_encoder_batches,
    search_data,
)
from bench.report import write_report
from bench.scale import (
    DEPTH,
    ScalePoint,
    build_synthetic,
    measure_inprocess,
    part_sizes,
    vocabulary,
)
from hybridsearch.config import Device, ServerSettings
from hybridsearch.engine.loader import encoder_info_of, load_engine, load_query_encoder
from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.eval.trec import read_trec_run
from hybridsearch.harness import ServerProcess, run_cli, start_server
from hybridsearch.storage.index_dir import open_index

# In-process measurements use what `hybridsearch serve` uses: one BLAS thread (see cli.main).
# faiss, loaded on first use, reads these; numpy (imported above) has already started its BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

MEASUREMENTS = WORK / "measurements"
CONCURRENCY = (1, 8, 32, 64)
ALL_STAGES = (
    "load", "limit", "peers", "scale", "bm25-scale", "filters", "ray-build", "ray-serve",
    "adaptive", "overhead", "lucene", "index", "report",
)  # fmt: skip


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
        run_cli(
            "index",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
            "--model",
            str(args.model),
            "--no-progress",
            "--force",
            *args.device_flags[:2],  # --device
            timeout=7200,
        )
    return out


def int8_model(args: argparse.Namespace) -> Path:
    """A copy of the model with its int8 query variant (`hybridsearch models quantize`)."""
    out = WORK / "models" / "int8"
    if not (out / "model_int8.onnx").is_file():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(args.model, out)
        print("== quantizing the query model (int8 variant)", flush=True)
        print(
            "   " + run_cli("models", "quantize", str(out), timeout=7200).stdout.strip(), flush=True
        )
    return out


# (name, serve flags, int8 query model?, hybrid concurrency levels); "default" also runs the
# sparse, dense and BatchSearch scenarios.
VARIANTS: tuple[tuple[str, tuple[str, ...], bool, tuple[int, ...]], ...] = (
    ("default", (), False, CONCURRENCY),
    ("no-batching", ("--encode-batching", "false"), False, (1, 32)),
    ("batch32", ("--max-batch-size", "32", "--max-batch-tokens", "8192"), False, (1, 32)),
    ("depth100", ("--sparse-depth", "100", "--dense-depth", "100"), False, (1, 32)),
    ("workers-2", ("--workers", "2", "--encoder-threads", "1"), False, CONCURRENCY),
    ("int8", ("--encoder-int8", "true"), True, CONCURRENCY),
    (
        "int8-workers-2",
        ("--encoder-int8", "true", "--workers", "2", "--encoder-threads", "1"),
        True,
        CONCURRENCY,
    ),
)


def stage_load(args: argparse.Namespace, index: Path, queries: list[str]) -> None:
    """Every variant's server runs at once (idle ones cost nothing: no thread spins); each load
    point is measured ``--repeats`` times, the variants taking turns within each round, so a
    slow spell of this shared machine hits them all alike; the report shows medians."""
    ensure_ghz()
    work = WORK / "ghz"
    # int8 query models run on CPU only: no int8 variants on a GPU.
    variants = tuple(v for v in VARIANTS if not (v[2] and args.device == "cuda"))
    if args.variants:
        wanted = set(args.variants.split(","))
        variants = tuple(v for v in variants if v[0] in wanted)
    calls = {
        "hybrid": (SEARCH, search_data(queries, "hybrid"), 1),
        "sparse": (SEARCH, search_data(queries, "sparse"), 1),
        "dense": (SEARCH, search_data(queries, "dense"), 1),
        "batch8": (BATCH, batch_data(queries, 8), 8),
    }
    plan = [(scenario, c, name) for scenario in calls for c in CONCURRENCY
            for name, _, _, levels in variants
            if (scenario == "hybrid" and c in levels) or name == "default"]  # fmt: skip
    servers: dict[str, ServerProcess] = {}
    samples: dict[tuple[str, str, int], list[dict[str, object]]] = {}
    overhead: dict[str, object] = {}
    profile: dict[str, object] = {}
    rss: dict[str, object] = {}
    try:
        for name, flags, int8, _ in variants:
            model = int8_model(args) if int8 else args.model
            servers[name] = start_bench_server(
                index, model, log_path(name), *flags, *args.device_flags
            )
            print(f"== load: server {name} on {servers[name].address}", flush=True)
            run_ghz(
                servers[name].address, "warmup", SEARCH, calls["hybrid"][1],
                concurrency=8, duration_s=2, work=work,
            )  # fmt: skip
        for round_ in range(1, args.repeats + 1):
            print(f"== load: round {round_} of {args.repeats}", flush=True)
            for scenario, c, name in plan:
                row = measure_point(
                    servers[name], name, scenario, calls[scenario], c=c, args=args, work=work
                )
                row["variant"] = name
                samples.setdefault((name, scenario, c), []).append(row)
        if "default" in servers:
            overhead = measure_overhead(args, index, queries, servers["default"], work)
            if args.profile:
                profile = profile_server(servers["default"], queries, work, args.duration)
        rss = {name: server.rss_bytes() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    batcher_logs = {
        name: "\n".join(line for line in log_path(name).read_text().splitlines()
                        if "batcher" in line)
        for name in servers
    }  # fmt: skip
    order = {name: i for i, (name, _, _, _) in enumerate(VARIANTS)}
    scenarios = {scenario: i for i, scenario in enumerate(calls)}
    keys = sorted(samples, key=lambda k: (order[k[0]], scenarios[k[1]], k[2]))
    points = [median_point(samples[key]) for key in keys]
    save("load", {"points": points, "rss": rss, "profile": profile, "repeats": args.repeats,
                  "batcher_logs": batcher_logs, "overhead": overhead})  # fmt: skip


def log_path(variant: str) -> Path:
    """Where the server of a load variant writes its log."""
    return WORK / f"server-{variant}.log"


def measure_point(
    server: ServerProcess,
    name: str,
    scenario: str,
    load_call: tuple[str, list[dict[str, object]], int],
    *,
    c: int,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, object]:
    """One ghz run against ``server``, with the server's CPU and mean micro-batch over it.

    ``load_call``: (gRPC method, request messages, queries per request).
    """
    call, data, per_request = load_call
    cpu_before = server.cpu_seconds()
    before = scrape_encoder_batches(server.metrics_url) if server.metrics_port else None
    point = run_ghz(
        server.address, scenario, call, data,
        concurrency=c, duration_s=args.duration, work=work, queries_per_request=per_request,
    )  # fmt: skip
    cpu = server.cpu_seconds() - cpu_before
    after = scrape_encoder_batches(server.metrics_url) if server.metrics_port else None
    queries_done = max(1, point.requests * per_request)
    row: dict[str, object] = {
        **point.to_json(),
        "server_cpu_ms_per_query": cpu / queries_done * 1000,
        "ghz_cpu_ms_per_query": point.ghz_cpu_s / queries_done * 1000,
    }
    if before and after and after[0] > before[0]:
        row["mean_encoder_batch"] = (after[1] - before[1]) / (after[0] - before[0])
    print(f"   {name:15} {scenario:7} c{c:<3} "
          f"{point.query_qps:8.1f} q/s p50 {point.p50_ms:7.2f} p99 {point.p99_ms:8.2f} ms "
          f"errors {point.errors} cpu/q {row['server_cpu_ms_per_query']:.1f} ms "
          f"batch {row.get('mean_encoder_batch', float('nan')):.2f}", flush=True)  # fmt: skip
    return row


def median_point(rows: list[dict[str, object]]) -> dict[str, object]:
    """The rounds of one load point: medians of the figures, errors summed, every run's q/s."""
    merged = dict(rows[0])
    for key in ("qps", "query_qps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_ms_per_query",
                "ghz_cpu_ms_per_query", "mean_encoder_batch"):  # fmt: skip
        values = [float(r[key]) for r in rows if key in r]  # type: ignore[arg-type]
        if values:
            merged[key] = float(np.median(values))
    merged["errors"] = sum(int(r["errors"]) for r in rows)  # type: ignore[call-overload]
    merged["requests"] = sum(int(r["requests"]) for r in rows)  # type: ignore[call-overload]
    merged["query_qps_runs"] = [r["query_qps"] for r in rows]
    return merged


def measure_overhead(
    args: argparse.Namespace,
    index: Path,
    queries: list[str],
    server: ServerProcess,
    work: Path,
) -> dict[str, object]:
    """gRPC c1 p50 − in-process engine p50, side by side: the engine is the server's own
    (same settings: batcher, threads, depth), measured in this process while the server idles,
    alternating with ghz runs so both see the same machine."""
    engine = load_engine(ServerSettings(index=index, model=args.model))
    result: dict[str, object] = {"floor": measure_grpc_floor(args, queries, work)}
    try:
        modes: dict[str, dict[str, object]] = {}
        result["modes"] = modes
        for mode in ("hybrid", "sparse", "dense"):
            grpc_p50, engine_p50 = [], []
            for _ in range(3):
                point = run_ghz(
                    server.address,
                    f"overhead-{mode}",
                    SEARCH,
                    search_data(queries, mode),
                    concurrency=1,
                    duration_s=args.duration / 2,
                    work=work,
                )
                grpc_p50.append(point.p50_ms)
                engine_p50.append(
                    engine_latency(engine, queries, mode, min_s=args.duration / 2).p50_ms
                )
            g, e = float(np.median(grpc_p50)), float(np.median(engine_p50))
            modes[mode] = {
                "grpc_p50_ms": g,
                "engine_p50_ms": e,
                "overhead_ms": g - e,
                "grpc_runs": grpc_p50,
                "engine_runs": engine_p50,
            }
            print(
                f"   overhead {mode}: gRPC p50 {g:.2f} − engine p50 {e:.2f} = {g - e:.2f} ms",
                flush=True,
            )
    finally:
        engine.close()
    return result


def measure_grpc_floor(args: argparse.Namespace, queries: list[str], work: Path) -> float:
    """ghz c1 p50 against bench/bare_server.py: grpc.aio + one executor hop + ghz, no work."""
    bare = start_server(program=(sys.executable, "-m", "bench.bare_server"), cwd=REPO)
    try:
        data = search_data(queries, "sparse")
        run_ghz(
            bare.address, "floor-warmup", SEARCH, data,
            concurrency=1, duration_s=1, work=work, proto=True,
        )  # fmt: skip
        floor = run_ghz(
            bare.address, "floor", SEARCH, data,
            concurrency=1, duration_s=args.duration, work=work, proto=True,
        )  # fmt: skip
    finally:
        bare.stop(timeout=30)
    print(f"   gRPC floor (empty grpc.aio handler, one executor hop): p50 {floor.p50_ms:.2f} ms")
    return floor.p50_ms


def profile_server(
    server: ServerProcess, queries: list[str], work: Path, duration_s: float
) -> dict[str, object]:
    """py-spy samples the server under hybrid c32: top frames by own GIL-holding samples."""
    pyspy = Path(sys.executable).with_name("py-spy")
    if not pyspy.exists():
        pyspy = Path(os.environ.get("PY_SPY", "py-spy"))
    raw = work / "profile-hybrid-c32.txt"
    try:
        spy = subprocess.Popen(
            [
                str(pyspy),
                "record",
                "--pid",
                str(server.process.pid),
                "--duration",
                str(int(duration_s)),
                "--rate",
                "100",
                "--threads",
                "--gil",  # samples where a thread holds the GIL: the Python work that queues
                "--output",
                str(raw),
                "--format",
                "raw",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        print(f"   py-spy unavailable ({exc}); no profile", flush=True)
        return {}
    run_ghz(
        server.address,
        "profiled",
        SEARCH,
        search_data(queries, "hybrid"),
        concurrency=32,
        duration_s=duration_s,
        work=work,
    )
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


def stage_limit(args: argparse.Namespace, index: Path, qtexts: list[tuple[str, str]]) -> None:
    """In-process engine latency, nDCG@10 and the raw component costs."""
    queries = [t for _, t in qtexts]
    collection = load_beir(args.shared_data / "scifact", split="test")
    engine = open_engine(index, args.model)
    try:
        latency = {
            m: dataclasses.asdict(engine_latency(engine, queries, m, min_s=args.duration))
            for m in ("hybrid", "sparse", "dense")
        }
        ndcg = {
            m: ndcg10(engine, qtexts, collection.qrels, m) for m in ("hybrid", "sparse", "dense")
        }
        ndcg["hybrid depth 100"] = ndcg10(engine, qtexts, collection.qrels, "hybrid", depth=100)
    finally:
        engine.close()
    engine = open_engine(index, int8_model(args), int8=True)
    try:
        for mode in ("hybrid", "dense"):
            ndcg[f"{mode} int8"] = ndcg10(engine, qtexts, collection.qrels, mode)
    finally:
        engine.close()
    print(f"   nDCG@10 {ndcg}", flush=True)
    models = {"full": (args.model, False), "int8": (int8_model(args), True)}
    costs = component_costs(index, models, queries)
    print(f"   component CPU ms/query: {dataclasses.asdict(costs)}", flush=True)
    save("limit", {"engine": latency, "ndcg10": ndcg, "costs": dataclasses.asdict(costs)})


def stage_peers(args: argparse.Namespace, index: Path, qtexts: list[tuple[str, str]]) -> None:
    """Pyserini and LanceDB on the same data and query model, each in its own venv."""
    subprocess.run([str(REPO / "bench" / "setup_peers.sh")], check=True)
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
            [
                str(python),
                "-m",
                f"bench.peers.{peer}_peer",
                "--index",
                str(index),
                "--corpus",
                str(args.shared_data / "scifact" / "corpus.jsonl"),
                "--queries",
                str(qfile),
                "--model",
                str(args.model),
                "--work",
                str(WORK / "peers" / peer),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
            # From the repository root, so `-m bench.peers...` finds the bench package; no
            # PYTHONPATH: the peer's venv has no hybridsearch and needs none.
            cwd=REPO,
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
                print(
                    f"   {peer} {name}: {value['qps']:.1f} q/s nDCG@10 {value['ndcg10']:.3f}",
                    flush=True,
                )
        results[peer] = result
    save("peers", results)


def stage_scale(args: argparse.Namespace, qtexts: list[tuple[str, str]]) -> None:
    """Synthetic corpora of ``--scale-sizes`` documents: build, in-process and gRPC figures."""
    encoder = load_query_encoder(args.model, Device.CPU, spinning=False)
    info = encoder_info_of(encoder)
    scifact = open_index(scifact_index(args))
    assert scifact.vectors is not None
    anchors = np.asarray(scifact.vectors)  # real MiniLM document vectors
    words, p = vocabulary(args.shared_data)
    queries = [t for _, t in qtexts][:200]
    query_vectors = encoder.encode_queries(queries)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ann_recall",
            "--index",
            str(scifact_index(args)),
            "--model",
            str(args.model),
            "--collection",
            str(args.shared_data / "scifact"),
            "--out",
            str(MEASUREMENTS / "ann_recall.json"),
        ],
        check=True,
        cwd=REPO,
    )
    previous = load("scale") or {}
    points = dict(previous) if isinstance(previous, dict) else {}
    ensure_ghz()
    for n in args.scale_sizes:
        out = WORK / "indexes" / f"synthetic-{n}"
        print(f"== scale: {n:,} documents", flush=True)
        started = time.perf_counter()
        build_s, hnsw_s = build_synthetic(out, n, words, p, info=info, anchors=anchors)
        total, sparse, vectors, graph = part_sizes(out)
        point = ScalePoint(n, build_s, hnsw_s, total, sparse, vectors, graph)
        print(f"   built in {build_s:.0f} + {hnsw_s:.0f} s, {total / 1e6:.0f} MB", flush=True)
        measure_inprocess(out, encoder, queries, query_vectors, point)
        server = start_bench_server(
            out,
            args.model,
            WORK / f"server-scale-{n}.log",
            "--sparse-depth",
            str(DEPTH),
            "--dense-depth",
            str(DEPTH),
            "--hnsw-ef-search",
            str(point.serve_ef_search),
        )
        try:
            data = search_data(queries, "hybrid")
            run_ghz(
                server.address, "warmup", SEARCH, data,
                concurrency=8, duration_s=2, work=WORK / "ghz",
            )  # fmt: skip
            for c in (1, 8):
                got = run_ghz(
                    server.address, f"scale{n}", SEARCH, data,
                    concurrency=c, duration_s=args.duration, work=WORK / "ghz",
                )  # fmt: skip
                point.grpc[f"hybrid c{c}"] = {
                    "qps": got.query_qps,
                    "p50_ms": got.p50_ms,
                    "p99_ms": got.p99_ms,
                    "errors": got.errors,
                }
            point.server_rss_bytes = server.rss_bytes()
        finally:
            server.stop()
        points[str(n)] = dataclasses.asdict(point)
        print(
            f"   recall@10 {point.recall_at_10}, gRPC {point.grpc}, "
            f"total {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        save("scale", points)
        if not args.keep_indexes:
            shutil.rmtree(out, ignore_errors=True)


def encoder_device(device: str, model: Path) -> tuple[str, tuple[str, ...]]:
    """(cpu or cuda, the serve flags for it): on CUDA the fp16 model where the model
    directory has one (the encoder binds I/O on CUDA by itself)."""
    import onnxruntime  # noqa: PLC0415

    if device == "auto":
        cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        device = "cuda" if cuda else "cpu"
    flags: tuple[str, ...] = ("--device", device)
    if device == "cuda" and (model / "model_fp16.onnx").is_file():
        flags += ("--encoder-fp16", "true")
    return device, flags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "var/models/all-MiniLM-L6-v2")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--stages", default=",".join(ALL_STAGES))
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load point")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every load point")
    parser.add_argument("--quick", action="store_true", help="3 s points, scale 10k only")
    parser.add_argument(
        "--scale-sizes",
        default="10000,100000,1000000",
        help="synthetic corpus sizes (1M: about 30 minutes of building on 2 cores)",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the py-spy profile of the server at hybrid c32",
    )
    parser.add_argument("--keep-indexes", action="store_true")
    parser.add_argument("--variants", default="", help="load: only these server variants")
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="servers' and builds' encoder device; auto: cuda where onnxruntime offers it",
    )
    args = parser.parse_args()
    args.device, args.device_flags = encoder_device(args.device, args.model)
    if args.quick:
        args.duration = 3.0
        args.repeats = 1
        args.scale_sizes = "10000"
    args.scale_sizes = [int(s) for s in args.scale_sizes.split(",") if s]
    args.model = args.model.resolve()
    stages = set(args.stages.split(","))
    unknown = stages - set(ALL_STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if stages - {"report"}:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        save("env", {**env_summary(), "started": started})
    qtexts = load_queries(args.shared_data / "scifact")
    queries = [t for _, t in qtexts]
    if stages & {"load", "limit", "peers"}:
        index = scifact_index(args)
        if "load" in stages:
            stage_load(args, index, queries)
        if "limit" in stages:
            print("== limit: in-process engine, raw components, nDCG", flush=True)
            stage_limit(args, index, qtexts)
        if "peers" in stages:
            stage_peers(args, index, qtexts)
    if "scale" in stages:
        stage_scale(args, qtexts)
    if "filters" in stages:
        # Its own results file (bench/results/<date>-filters.md + PNG), see bench/filters.py.
        print("== filters: filtered recall and latency by selectivity", flush=True)
        docs = "10000" if args.quick else "100000"
        subprocess.run([sys.executable, "-m", "bench.filters", "--docs", docs], check=True)
    if "ray-build" in stages:
        # Its own results file (bench/results/<date>-ray-build.md), see bench/ray_build.py.
        print("== ray-build: distributed build vs single process, same cores", flush=True)
        docs = "300" if args.quick else "1000"
        subprocess.run([sys.executable, "-m", "bench.ray_build", "--docs", docs,
                        "--model", str(args.model), "--shared-data", str(args.shared_data)],
                       check=True)  # fmt: skip
    if "ray-serve" in stages:
        # Its own results file (bench/results/<date>-ray-serve.md), see bench/ray_serve.py:
        # 1 index vs 1 shard in process vs 1 and 3 shards on Ray, a replica SIGKILLed, the hop.
        print("== ray-serve: sharded serving on Ray vs one process", flush=True)
        seconds = "3" if args.quick else "8"
        subprocess.run([sys.executable, "-m", "bench.ray_serve", "--seconds", seconds,
                        "--model", str(args.model)], check=True)  # fmt: skip
    if "bm25-scale" in stages:
        # Its own results file (bench/results/<date>-bm25-scale.md), see bench/bm25_scale.py:
        # BM25 top-k at a million documents, the query with and without its stopwords, and the
        # same documents in Lucene (the Lucene arm, and Lucene's block-max WAND top k).
        print("== bm25-scale: BM25 latency at 1M documents", flush=True)
        docs = "100000" if args.quick else "1000000"
        subprocess.run([sys.executable, "-m", "bench.bm25_scale", "--docs", docs,
                        "--shared-data", str(args.shared_data)], check=True)  # fmt: skip
    if "index" in stages:
        # Its own results file (bench/results/<date>-index-throughput.md).
        print("== index: indexing documents/s vs the raw encoder's best batch", flush=True)
        docs = "300" if args.quick else "1400"
        subprocess.run([sys.executable, "-m", "bench.index_throughput", "--docs", docs,
                        "--device", args.device, "--model", str(args.model),
                        "--shared-data", str(args.shared_data)], check=True)  # fmt: skip
    if "adaptive" in stages:
        print("== adaptive: cost of adaptive fusion per query", flush=True)
        subprocess.run([sys.executable, "-m", "bench.adaptive_fusion"], check=True)
    if "overhead" in stages:
        # Its own results file (bench/results/<date>-overhead.md), see bench/overhead.py.
        print("== overhead: the old commit's server beside this one, CPU by stage", flush=True)
        subprocess.run([sys.executable, "-m", "bench.overhead", "--index",
                        str(scifact_index(args)), "--model", str(args.model),
                        "--shared-data", str(args.shared_data),
                        "--duration", "3" if args.quick else "4",
                        "--repeats", str(args.repeats)], check=True)  # fmt: skip
        # And what protobuf's runtime costs per call (upb vs pure Python): <date>-proto-backend.md
        subprocess.run([sys.executable, "-m", "bench.proto_backend"], check=True)
    if "lucene" in stages:
        # Its own results file (bench/results/<date>-lucene-arm.md), see bench/lucene_arm.py.
        print("== lucene: the Lucene sparse arm vs tantivy, q/s and CPU per query", flush=True)
        subprocess.run([sys.executable, "-m", "bench.lucene_arm", "--model", str(args.model),
                        "--shared-data", str(args.shared_data)], check=True)  # fmt: skip
    path = write_report(MEASUREMENTS, RESULTS)
    print(f"== results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
