"""bench/results/<date>.md and PNG plots from bench/.work/measurements/*.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

CONCURRENCY = (1, 8, 32, 64)
Point = dict[str, Any]


def _load(folder: Path, name: str) -> Any:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


class Report:
    """Collects sections and the target table; written out once every section is in."""

    def __init__(self, measurements: Path, results: Path) -> None:
        self.m = measurements
        self.results = results
        self.stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        self.lines: list[str] = []
        self.targets: list[tuple[str, str, str, str]] = []
        self.env = _load(measurements, "env") or {}
        self.load = _load(measurements, "load") or {}
        self.limit = _load(measurements, "limit")
        self.peers = _load(measurements, "peers")
        self.scale = _load(measurements, "scale")
        self.ann = _load(measurements, "ann_recall")
        self.points: list[Point] = self.load.get("points", [])
        self.cores = int(self.env.get("cpus") or 1)

    def point(self, variant: str, scenario: str, c: int) -> Point | None:
        for p in self.points:
            if p["variant"] == variant and p["scenario"] == scenario and p["concurrency"] == c:
                return p
        return None

    def best_hybrid(self, variants: tuple[str, ...]) -> Point | None:
        rows = [p for p in self.points if p["scenario"] == "hybrid" and p["variant"] in variants]
        return max(rows, key=lambda p: p["query_qps"], default=None)

    def target(self, name: str, measured: str, ok: bool, limits: str) -> None:
        self.targets.append((name, measured, _verdict(ok), limits))

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def write(self) -> Path:
        head = [
            f"# hybridsearch benchmark — {self.stamp}",
            "",
            f"Machine: {self.env.get('cpus')} CPUs ({self.env.get('cpu')}), "
            f"Python {self.env.get('python')}, commit {self.env.get('commit', '?')}; load "
            f"average at start {self.env.get('load_avg_at_start')}. The load generator (ghz) runs "
            "on the same cores as the server; its CPU per query is in the load table.",
            "GPU: " + self.env.get("gpu", "none in this session") + ".",
            "Data: SciFact (5,183 docs, 300 test queries), all-MiniLM-L6-v2 (the int8-weight "
            "ONNX the server ships), top 10; server defaults unless the variant says otherwise "
            "(min-max interpolation, alpha 0.5, 1000 candidates per arm, micro-batching of at "
            "most 8 queries, one process).",
            "",
        ]
        table = [
            "## Targets",
            "",
            "| target | measured | verdict | what limits it |",
            "|---|---|---|---|",
            *(f"| {t} | {m} | {v} | {why} |" for t, m, v, why in self.targets),
            "",
        ]
        out = self.results / f"{self.stamp}.md"
        out.write_text("\n".join(head + table + self.lines) + "\n", encoding="utf-8")
        return out


def write_report(measurements: Path, results: Path) -> Path:
    r = Report(measurements, results)
    if r.points:
        _load_section(r)
    if r.limit:
        _limit_section(r)
    if r.load.get("overhead"):
        _overhead_section(r)
    if r.peers:
        _peers_section(r)
    if r.scale:
        _scale_section(r)
    _profile_section(r)
    return r.write()


def _load_section(r: Report) -> None:
    r.add("## Load over gRPC (ghz, server reflection)", "")
    repeats = r.load.get("repeats", 1)
    r.add(
        f"Every variant's server ran at once; each point was measured {repeats} times, the "
        "variants taking turns within each round; the table gives medians (queries/s of "
        "the slowest and fastest round in brackets).",
        "",
    )
    r.add(
        "| server | scenario | c | queries/s | p50 ms | p95 ms | p99 ms | errors | "
        "server CPU ms/query | ghz CPU ms/query | mean encoder batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    )
    for p in r.points:
        batch = p.get("mean_encoder_batch")
        runs = p.get("query_qps_runs") or [p["query_qps"]]
        spread = f" ({min(runs):,.0f}–{max(runs):,.0f})" if len(runs) > 1 else ""
        r.add(
            f"| {p['variant']} | {p['scenario']} | {p['concurrency']} | "
            f"{_f(p['query_qps'])}{spread} | "
            f"{_f(p['p50_ms'], 2)} | {_f(p['p95_ms'], 2)} | {_f(p['p99_ms'], 2)} | "
            f"{p['errors']} | {p['server_cpu_ms_per_query']:.1f} | "
            f"{p.get('ghz_cpu_ms_per_query', float('nan')):.2f} | "
            f"{'' if batch is None else f'{batch:.2f}'} |"
        )
    r.add(
        "",
        "Variants: `no-batching` `--encode-batching false`; `batch32` `--max-batch-size 32 "
        "--max-batch-tokens 8192`; `depth100` `--sparse-depth 100 --dense-depth 100`; "
        "`workers-2` `--workers 2 --encoder-threads 1`; `int8` `--encoder-int8 true` (queries "
        "encoded by `models quantize`'s int8 model); `int8-workers-2` both. `batch8` = "
        "BatchSearch of 8 hybrid queries (queries/s counts queries). Server CPU ms/query = the "
        "server processes' user+system CPU during the run / queries; ghz CPU likewise for the "
        "load generator; mean encoder batch from the server's "
        "`hybridsearch_encoder_batched_queries_total / hybridsearch_encoder_batches_total` "
        "(one-worker servers only).",
        "",
    )
    rss = r.load.get("rss", {})
    r.add(
        "Server RSS after load: "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items() if isinstance(v, int))
        + ".",
        "",
    )
    logs = r.load.get("batcher_logs", {})
    if logs.get("default"):
        r.add(f"Batcher over the whole default run: `{logs['default'].splitlines()[-1]}`", "")
    _plot_load(r, r.results / f"{r.stamp}-load.png")
    r.add(f"![load]({r.stamp}-load.png)", "")

    c1, c32 = r.point("default", "hybrid", 1), r.point("default", "hybrid", 32)
    if c1 and c32:
        ratio = c32["query_qps"] / c1["query_qps"]
        server_cores = r.cores - c32["ghz_cpu_ms_per_query"] * c32["query_qps"] / 1000
        ceiling = server_cores * 1000 / c32["server_cpu_ms_per_query"] / c1["query_qps"]
        r.target(
            "hybrid QPS at c32 ≥ 3× c1 (batching works)",
            f"{ratio:.2f}× ({_f(c32['query_qps'])} vs {_f(c1['query_qps'])} q/s; mean batch "
            f"{c32.get('mean_encoder_batch', float('nan')):.1f} at c32)",
            ratio >= 3,
            f"CPU: at c1 the server already spends {c1['server_cpu_ms_per_query']:.1f} CPU ms "
            f"per query in {c1['p50_ms']:.1f} ms (onnxruntime uses both cores), at c32 "
            f"{c32['server_cpu_ms_per_query']:.1f}; with {server_cores:.2f} cores left by ghz "
            f"the ratio cannot pass {ceiling:.2f}× on this {r.cores}-core machine",
        )
    best = r.best_hybrid(("default", "workers-2"))
    if best:
        r.add(
            f"Best full-model hybrid throughput: `{best['variant']}` at c{best['concurrency']}, "
            f"{_f(best['query_qps'])} q/s.",
            "",
        )


def _limit_section(r: Report) -> None:
    limit = r.limit
    costs = limit["costs"]
    r.add("## In-process engine, raw components, compute limit", "")
    r.add("| mode | engine p50 ms | p99 ms | queries/s (sequential) |", "|---|---|---|---|")
    for mode, e in limit["engine"].items():
        r.add(f"| {mode} | {_f(e['p50_ms'], 2)} | {_f(e['p99_ms'], 2)} | {_f(e['qps'])} |")
    st = limit["engine"]["hybrid"]["stages_us"]
    r.add(
        "",
        "Hybrid stage means (µs, arms concurrent): "
        + ", ".join(f"{k} {v:.0f}" for k, v in st.items()),
        "",
    )
    r.add(
        "nDCG@10 on SciFact: "
        + ", ".join(f"{k} {v:.3f}" for k, v in limit["ndcg10"].items())
        + ".",
        "",
    )
    r.add("Raw components, CPU ms per query on one thread each (bench/inprocess.py):", "")
    sizes = sorted(int(b) for b in costs["product_cpu_ms"])
    r.add(
        "| component | " + " | ".join(f"batch {b}" for b in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    )
    for name, per in costs["encode_cpu_ms"].items():
        r.add(
            f"| encode, {name} model, batches grouped by length | "
            + " | ".join(f"{per[str(b)]:.2f}" for b in sizes)
            + " |"
        )
    r.add(
        "| encode, full model, batches in arrival order | "
        + " | ".join(f"{costs['encode_arrival_cpu_ms'][str(b)]:.2f}" for b in sizes)
        + " |"
    )
    r.add(
        "| exact product + top 1000 | "
        + " | ".join(f"{costs['product_cpu_ms'][str(b)]:.3f}" for b in sizes)
        + " |"
    )
    r.add(
        "",
        f"tantivy BM25 top-10 {costs['sparse_cpu_ms']['10']:.3f}, top-100 "
        f"{costs['sparse_cpu_ms']['100']:.3f}, top-1000 {costs['sparse_cpu_ms']['1000']:.3f}; "
        f"fusion of two 1000-lists + ids {costs['fusion_cpu_ms']:.3f} CPU ms per query.",
        "",
    )
    r.add(
        "Compute limit = cores × 1000 / (component CPU ms per query at the mean batch the "
        "server formed); achieved = ghz queries/s; efficiency = component CPU / server CPU "
        "per query (what the server spends beyond the components: gRPC, asyncio, threads, "
        "Python).",
        "",
    )
    r.add(
        "| server | mode | c | mean batch | limit q/s | achieved q/s | achieved/limit | "
        "efficiency |",
        "|---|---|---|---|---|---|---|---|",
    )
    best: tuple[float, Point, float] | None = None
    for p in r.points:
        if p["scenario"] not in ("hybrid", "sparse", "dense") or p["variant"] == "depth100":
            continue  # depth100 needs other components (top-100 arms): no limit computed
        model = "int8" if p["variant"].startswith("int8") else "full"
        batch = _batch_of(p)
        need = _cpu_ms(costs, p["scenario"], model, batch)
        lim = r.cores * 1000 / need
        share = p["query_qps"] / lim
        eff = need / p["server_cpu_ms_per_query"]
        estimated = "" if p.get("mean_encoder_batch") else " (est.)"
        r.add(
            f"| {p['variant']} | {p['scenario']} | {p['concurrency']} | {batch:.1f}"
            f"{estimated} | {_f(lim)} | {_f(p['query_qps'])} | {share:.0%} | {eff:.0%} |"
        )
        if (
            p["scenario"] == "hybrid"
            and model == "full"
            and (best is None or p["query_qps"] > best[1]["query_qps"])
        ):
            best = (share, p, eff)
    r.add(
        "",
        'Mean batch "est.": servers of two workers have no metrics endpoint; each '
        "worker takes about half the load, so min(c / 2, 8) is assumed.",
        "",
    )
    if best:
        share, p, eff = best
        ghz_cores = p["ghz_cpu_ms_per_query"] * p["query_qps"] / 1000
        r.target(
            "achieved ≥ 70 % of the compute limit at the best concurrency (hybrid)",
            f"{share:.0%}: `{p['variant']}` at c{p['concurrency']} ({_f(p['query_qps'])} of "
            f"{_f(p['query_qps'] / share)} q/s); server CPU efficiency {eff:.0%}",
            share >= 0.7,
            f"the server spends {p['server_cpu_ms_per_query']:.1f} CPU ms per query where the "
            f"components need {p['server_cpu_ms_per_query'] * eff:.1f} (gRPC, asyncio, thread "
            f"hand-offs, Python; see the profile); ghz takes {ghz_cores:.2f} of the "
            f"{r.cores} cores",
        )


def _batch_of(p: Point) -> float:
    """The point's mean micro-batch: measured, or estimated where the server had no metrics."""
    if p.get("mean_encoder_batch"):
        return float(p["mean_encoder_batch"])
    if p["variant"] == "no-batching":
        return 1.0
    workers = 2 if "workers-2" in p["variant"] else 1
    return float(min(max(p["concurrency"] / workers, 1), 8))


def _cpu_ms(costs: dict[str, Any], mode: str, model: str, batch: float) -> float:
    """Mirror of inprocess.ComponentCosts.cpu_ms_per_query over the saved JSON."""

    def at(per: dict[str, float]) -> float:
        sizes = sorted(int(b) for b in per)
        x = np.log2(min(max(batch, sizes[0]), sizes[-1]))
        return float(np.interp(x, np.log2(sizes), [per[str(b)] for b in sizes]))

    if mode == "sparse":
        return float(costs["sparse_cpu_ms"]["10"])
    dense = at(costs["encode_cpu_ms"][model]) + at(costs["product_cpu_ms"])
    if mode == "dense":
        return dense
    return dense + float(costs["sparse_cpu_ms"]["1000"]) + float(costs["fusion_cpu_ms"])


def _overhead_section(r: Report) -> None:
    over = r.load["overhead"]
    modes = over["modes"]
    floor = over.get("floor")
    r.add("## gRPC overhead (side by side)", "")
    r.add(
        "The server's own engine (same settings: batcher, threads, depth), in the bench "
        "process while the server idles, alternating three times with ghz c1 runs; medians. "
        "Floor: ghz c1 against bench/bare_server.py, a grpc.aio server whose Search does one "
        "executor hop and returns an empty response (what grpc.aio + ghz cost by themselves "
        "here).",
        "",
    )
    r.add("| mode | gRPC c1 p50 ms | in-process engine p50 ms | overhead ms |", "|---|---|---|---|")
    for mode, o in modes.items():
        r.add(
            f"| {mode} | {o['grpc_p50_ms']:.2f} | {o['engine_p50_ms']:.2f} | "
            f"**{o['overhead_ms']:.2f}** |"
        )
    if floor is not None:
        r.add(f"| floor: empty handler | {floor:.2f} | 0 | {floor:.2f} |")
    r.add("")
    h, sp = modes.get("hybrid"), modes.get("sparse")
    if h and sp:
        worst = max(o["overhead_ms"] for o in modes.values())
        r.target(
            "gRPC overhead ≤ 1 ms p50",
            f"hybrid {h['overhead_ms']:.2f} ms, sparse {sp['overhead_ms']:.2f} ms, dense "
            f"{modes.get('dense', {}).get('overhead_ms', float('nan')):.2f} ms"
            + (f" (floor {floor:.2f} ms)" if floor is not None else ""),
            worst <= 1,
            "grpc.aio, ghz and one executor hop cost the floor by themselves; the rest is the "
            "interceptor chain (request id, access log and metrics; admission; error mapping; "
            "deferred decoding), proto conversion, the fetch of stored fields and the hops to "
            "the batcher; c1 medians move by ±0.5 ms between runs here",
        )


def _peers_section(r: Report) -> None:
    peers = r.peers
    ndcg = (r.limit or {}).get("ndcg10", {})
    r.add("## Peers on SciFact (same data, same ONNX query model)", "")
    r.add(
        "| system | sequential q/s | p50 ms | 2 threads q/s | 4 threads q/s | nDCG@10 |",
        "|---|---|---|---|---|---|",
    )
    peer_best: dict[str, tuple[float, float]] = {}
    for peer, result in peers.items():
        if "error" in result:
            r.add(f"| {peer} | failed: see the bench log | | | | |")
            continue
        for name, v in result.items():
            if not (isinstance(v, dict) and "qps" in v):
                continue
            conc = v.get("concurrent", {})
            r.add(
                f"| {peer} {name} | {_f(v['qps'])} | {_f(v['p50'], 2)} | "
                f"{_f(conc['2']) if '2' in conc else ''} | "
                f"{_f(conc['4']) if '4' in conc else ''} | {v.get('ndcg10', float('nan')):.3f} |"
            )
            if "hybrid" in name:
                top = max([v["qps"], *(float(x) for x in conc.values())])
                if top > peer_best.get(peer, (0.0, 0.0))[0]:
                    peer_best[peer] = (top, v.get("ndcg10", float("nan")))
        if "hybrid_batch_qps" in result:
            r.add(
                f"| {peer} hybrid batch_search (threads = cores) | "
                f"{_f(result['hybrid_batch_qps'])} | | | | |"
            )
    r.add("")
    ours = r.best_hybrid(("default", "workers-2", "no-batching", "batch32"))
    fast = r.best_hybrid(("int8", "int8-workers-2"))
    if not ours:
        return
    ours_ndcg = ndcg.get("hybrid", float("nan"))
    r.add(
        f"hybridsearch, best full-model server: `{ours['variant']}` c{ours['concurrency']} "
        f"{_f(ours['query_qps'])} q/s, nDCG@10 {ours_ndcg:.3f}"
        + (
            f"; int8 query model: `{fast['variant']}` c{fast['concurrency']} "
            f"{_f(fast['query_qps'])} q/s, nDCG@10 {ndcg.get('hybrid int8', float('nan')):.3f}"
            if fast
            else ""
        )
        + ".",
        "",
    )
    for peer, factor in (("pyserini", 5), ("lancedb", 2)):
        if peer not in peer_best:
            continue
        top, their_ndcg = peer_best[peer]
        ratio = ours["query_qps"] / top
        fast_ratio = fast["query_qps"] / top if fast else float("nan")
        r.target(
            f"≥ {factor}× {peer} hybrid QPS, nDCG@10 no lower",
            f"{ratio:.1f}× (ours {_f(ours['query_qps'])} vs their best {_f(top)} q/s; int8 "
            f"queries {fast_ratio:.1f}×); nDCG {ours_ndcg:.3f} vs {their_ndcg:.3f}",
            ratio >= factor and ours_ndcg >= their_ndcg,
            "both sides pay the same ONNX encoder per query; the ratio is what the rest of "
            "each stack costs (see the component table)",
        )


def _scale_section(r: Report) -> None:
    scale = r.scale
    r.add("## Scale: synthetic corpora", "")
    r.add(
        "Text sampled by word frequency from the shared collections; vectors = a real "
        "SciFact MiniLM vector + noise (bench/scale.py says why); queries = 200 real SciFact "
        "queries. In-process p50 / p99 ms, one query at a time; dense arms on precomputed "
        "query vectors (exact: the first 50 queries); the hybrid columns run the engine with "
        "its encoder, 100 candidates per arm, HNSW at the served efSearch. gRPC: a server with "
        "`--sparse-depth 100 --dense-depth 100 --hnsw-ef-search <that ef>`, ghz hybrid.",
        "",
    )
    rows = sorted((int(n), p) for n, p in scale.items() if "latency_ms" in p)
    names = [k for k in rows[-1][1]["latency_ms"]] if rows else []
    r.add(
        "| docs | build s (BM25 + vectors / HNSW) | disk MB (tantivy / vectors / HNSW) | "
        "server RSS MiB | " + " | ".join(names) + " | gRPC hybrid c1 p50 / p99 | "
        "gRPC hybrid c8 p50 / p99 (q/s) |",
        "|---|---|---|---|" + "---|" * len(names) + "---|---|",
    )
    for n, p in rows:
        cells = [
            f"{p['latency_ms'][k]['p50']:.2f} / {p['latency_ms'][k]['p99']:.2f}"
            if k in p["latency_ms"]
            else ""
            for k in names
        ]
        g1, g8 = p["grpc"].get("hybrid c1", {}), p["grpc"].get("hybrid c8", {})
        r.add(
            f"| {n:,} | {p['build_s']:.0f} / {p['hnsw_build_s']:.0f} | "
            f"{p['bytes_sparse'] / 1e6:,.0f} / {p['bytes_vectors'] / 1e6:,.0f} / "
            f"{p['bytes_hnsw'] / 1e6:,.0f} | {p['server_rss_bytes'] / 2**20:,.0f} | "
            + " | ".join(cells)
            + f" | {g1.get('p50_ms', 0):.1f} / {g1.get('p99_ms', 0):.1f} | "
            f"{g8.get('p50_ms', 0):.1f} / {g8.get('p99_ms', 0):.1f} "
            f"({g8.get('qps', 0):.0f}) |"
        )
    r.add(
        "",
        "HNSW (faiss, M 32, efConstruction 100) recall@10 vs exact and dense p50 by efSearch:",
        "",
    )
    for n, p in rows:
        r.add(
            f"- {n:,} docs: "
            + ", ".join(
                f"ef {ef}: recall {rec:.3f}, p50 {p['hnsw_p50_ms'][ef]:.2f} ms"
                for ef, rec in p["recall_at_10"].items()
            )
            + f" (served at ef {p['serve_ef_search']})"
        )
    if r.ann:
        r.add(
            "",
            "Real MiniLM vectors (SciFact documents and its 300 test queries, graph built "
            f"in {r.ann['build_s']:.1f} s): recall@10 "
            + ", ".join(f"efSearch {k[2:]} {v:.3f}" for k, v in r.ann.items() if k.startswith("ef"))
            + ".",
        )
    _plot_scale(rows, r.results / f"{r.stamp}-scale.png")
    r.add("", f"![scale]({r.stamp}-scale.png)", "")
    if not rows:
        return
    n, p = rows[-1]
    label = f"at {n:,} docs" + ("" if n >= 1_000_000 else " (1M not measured)")
    met = [
        (int(ef), rec, p["hnsw_p50_ms"][ef])
        for ef, rec in p["recall_at_10"].items()
        if rec >= 0.95 and p["hnsw_p50_ms"][ef] <= 5
    ]
    r.target(
        "1M docs: ANN dense p50 ≤ 5 ms at recall@10 ≥ 0.95 vs exact",
        f"{label}: "
        + (
            "; ".join(f"ef {e}: recall {rec:.3f}, p50 {t:.2f} ms" for e, rec, t in met)
            or "no efSearch met both"
        ),
        bool(met) and n >= 1_000_000,
        "graph search cost grows with efSearch; recall with the corpus's neighbourhood structure",
    )
    g8 = p["grpc"].get("hybrid c8", {})
    sparse = p["latency_ms"].get("sparse top100", {})
    hybrid: dict[str, float] = next(
        (v for k, v in p["latency_ms"].items() if k.startswith("hybrid hnsw")), {}
    )
    if g8:
        r.target(
            "1M docs: hybrid p99 ≤ 50 ms at concurrency 8",
            f"{label}: p99 {g8['p99_ms']:.1f} ms, p50 {g8['p50_ms']:.1f} ms, {g8['qps']:.0f} q/s",
            g8["p99_ms"] <= 50 and n >= 1_000_000,
            f"8 queries in flight share {r.cores} cores: one hybrid query alone takes "
            f"{hybrid.get('p50', float('nan')):.1f} ms p50 in-process (encoder included), BM25 "
            f"top-100 alone {sparse.get('p50', float('nan')):.1f} ms p50 / "
            f"{sparse.get('p99', float('nan')):.1f} ms p99 over frequency-sampled text",
        )


def _profile_section(r: Report) -> None:
    profile = r.load.get("profile") or {}
    if not profile.get("top_self"):
        return
    r.add(
        "## Profile",
        "",
        "py-spy on the default server under hybrid c32 (samples where a thread "
        f"held the GIL; top frames by own samples of {profile['total_samples']}):",
        "",
        "```",
    )
    r.add(*(f"{n:6d}  {frame}" for frame, n in profile["top_self"]))
    r.add("```", "")


def _plot_load(r: Report, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 (plots only; the backend is chosen before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    variants = dict.fromkeys(p["variant"] for p in r.points)
    for variant in variants:
        rows = [p for p in r.points if p["variant"] == variant and p["scenario"] == "hybrid"]
        if len(rows) > 1:
            left.plot(
                [p["concurrency"] for p in rows],
                [p["query_qps"] for p in rows],
                marker="o",
                label=f"hybrid {variant}",
            )
    for scenario in ("sparse", "dense", "batch8"):
        rows = [p for p in r.points if p["variant"] == "default" and p["scenario"] == scenario]
        if rows:
            left.plot(
                [p["concurrency"] for p in rows],
                [p["query_qps"] for p in rows],
                marker="s",
                linestyle=":",
                label=f"{scenario} default",
            )
    rows = [p for p in r.points if p["variant"] == "default" and p["scenario"] == "hybrid"]
    right.plot(
        [p["concurrency"] for p in rows],
        [p["p50_ms"] for p in rows],
        marker="o",
        label="hybrid p50",
    )
    right.plot(
        [p["concurrency"] for p in rows],
        [p["p99_ms"] for p in rows],
        marker="o",
        label="hybrid p99",
    )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="concurrency",
        ylabel="queries/s",
        title="throughput (ghz)",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="concurrency",
        ylabel="ms",
        title="default server latency",
    )
    left.legend(fontsize=7)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_scale(rows: list[tuple[int, Point]], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 (plots only; the backend is chosen before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in rows[-1][1]["latency_ms"]:
        ax.plot(
            [n for n, _ in rows],
            [p["latency_ms"][name]["p50"] for _, p in rows],
            marker="o",
            label=f"{name} p50",
        )
    ax.plot(
        [n for n, _ in rows],
        [p["grpc"]["hybrid c8"]["p99_ms"] for _, p in rows],
        marker="^",
        linestyle="--",
        label="gRPC hybrid c8 p99",
    )
    ax.set(
        xscale="log", yscale="log", xlabel="documents", ylabel="ms", title="latency vs corpus size"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
