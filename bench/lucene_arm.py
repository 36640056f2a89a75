"""The Lucene sparse arm against tantivy's: queries/s and CPU per query, one run, same queries.

    python -m bench.lucene_arm [--index-cache var/eval-indexes] [--shared-data ../shared/data]
        [--model var/models/all-MiniLM-L6-v2] [--rounds 3] [--queries 300]

On SciFact (its judged test queries), in-process engines (`HybridSearcher`, as the server
runs them, no gRPC), top 10 with 1000 candidates per arm (the server defaults):

- tantivy: the eval cache's SciFact index (tantivy BM25 + MiniLM vectors);
- lucene: the eval cache's BM25-only Lucene index of SciFact (`scripts/eval_lucene.py`)
  with the same MiniLM vectors (rows reordered to Lucene's ordinals), as
  `--sparse-backend lucene` would build it.

Sequential SPARSE and HYBRID runs of both, in alternating rounds (medians): queries/s and CPU
per query (``time.process_time``: every thread of the process, the JVM's included). Then the
GIL question: SPARSE from 1 and 2 Python threads at once (each thread its share of the
queries, detached from the JVM at its end) — a ratio near 2 on 2 cores means a Lucene search
does not hold the GIL — and a direct probe: a pure-Python loop's rate while another thread
is inside a Java call, against a thread that sleeps and one that loops in Python. Writes
bench/results/<date>-lucene-arm.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.common import REPO, RESULTS, WORK, env_summary, load_queries
from hybridsearch.config import Device
from hybridsearch.dense.store import write_vectors
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.lucene_arm import lucene_bm25_index
from hybridsearch.sparse.lucene_jvm import detach_thread, java_class
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.storage.manifest import IDS_FILE, MANIFEST_FILE, VECTORS_FILE, load_manifest
from hybridsearch.types import Query, RetrievalMode

TOP_K = 10


def tantivy_scifact(cache: Path) -> Path:
    """The eval cache's SciFact index with vectors and no schema (newest)."""
    found = [p for p in (cache / "scifact").glob("*") if "schema" not in p.name]
    found = [p for p in found if (p / VECTORS_FILE).is_file() and "lucene" not in p.name]
    if not found:
        raise SystemExit(f"no SciFact index in {cache}: run `make eval` first")
    return max(found, key=lambda p: p.stat().st_mtime)


def lucene_with_vectors(lucene: OpenIndex, tantivy: OpenIndex, out: Path) -> Path:
    """A Lucene-backed index of SciFact with the tantivy index's vectors, in Lucene order."""
    if (out / MANIFEST_FILE).is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(lucene.path, out)
    row = {doc_id: i for i, doc_id in enumerate(tantivy.ids)}
    assert tantivy.vectors is not None
    vectors = np.asarray(tantivy.vectors[[row[d] for d in lucene.ids]], dtype=np.float32)
    write_vectors(out / VECTORS_FILE, vectors)
    encoder = load_manifest(tantivy.path).encoder
    dataclasses.replace(load_manifest(out), encoder=encoder).save(out)
    assert json.loads((out / IDS_FILE).read_text()) == lucene.ids
    return out


def timed(run: Callable[[], None], n: int) -> tuple[float, float]:
    """(queries/s, CPU ms per query) of ``run``, which answers ``n`` queries."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, 1000 * cpu / n


def sequential(engine: HybridSearcher, texts: list[str], mode: RetrievalMode) -> Callable[[], None]:
    def run() -> None:
        for text in texts:
            engine.search(Query(text=text, top_k=TOP_K, mode=mode))

    return run


def threaded(engine: HybridSearcher, texts: list[str], threads: int) -> Callable[[], None]:
    """SPARSE searches of ``texts`` shared out over ``threads`` Python threads."""

    def worker(part: list[str]) -> None:
        try:
            for text in part:
                engine.search(Query(text=text, top_k=TOP_K, mode=RetrievalMode.SPARSE))
        finally:
            detach_thread()

    def run() -> None:
        pool = [threading.Thread(target=worker, args=(texts[i::threads],)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    return run


def counter_rate(seconds: float) -> float:
    """Pure-Python loop iterations per second of wall time (needs the GIL throughout)."""
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n / seconds


def gil_probe(seconds: float) -> dict[str, float]:
    """A pure-Python loop's rate while another thread sits in a Java call (``Thread.sleep``
    through pyjnius) or in a pure-Python busy loop, each as a fraction of its rate while
    the other thread sits in ``time.sleep`` (which releases the GIL): taken back to back, so
    the machine's load is much the same. Near 1: the other thread leaves the GIL free."""
    java_thread = java_class("java.lang.Thread")

    def busy() -> None:
        counter_rate(seconds + 0.5)

    def in_java() -> None:
        try:
            java_thread.sleep(int((seconds + 0.5) * 1000))
        finally:
            detach_thread()

    rates = {}
    for name, target in (
        ("python sleep", lambda: time.sleep(seconds + 0.5)),
        ("java call", in_java),
        ("python busy loop", busy),
    ):
        other = threading.Thread(target=target)
        other.start()
        time.sleep(0.1)
        rates[name] = counter_rate(seconds)
        other.join()
    base = rates.pop("python sleep")
    return {name: rate / base for name, rate in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-cache", type=Path, default=REPO / "var" / "eval-indexes")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=REPO / "var/models/all-MiniLM-L6-v2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    collection = load_beir(args.shared_data / "scifact")
    texts = [t for _, t in load_queries(args.shared_data / "scifact")][: args.queries]
    tantivy_index = open_index(tantivy_scifact(args.index_cache))
    lucene_bm25 = lucene_bm25_index(collection, args.index_cache, "scifact")
    lucene_dir = lucene_with_vectors(lucene_bm25, tantivy_index, WORK / "indexes" / "lucene-arm")
    encoder: Encoder = load_query_encoder(args.model, Device.CPU)
    engines = {
        "tantivy": HybridSearcher(tantivy_index, encoder, arm_threads=2),
        "lucene": HybridSearcher(open_index(lucene_dir), encoder, arm_threads=2),
    }
    n = len(texts)
    for engine in engines.values():  # warm-up: JIT, page cache, encoder
        sequential(engine, texts[:30], RetrievalMode.HYBRID)()
    samples: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for backend, engine in engines.items():
            for mode in (RetrievalMode.SPARSE, RetrievalMode.HYBRID):
                key = f"{backend} {mode.name.lower()}"
                samples.setdefault(key, []).append(timed(sequential(engine, texts, mode), n))
            for threads in (1, 2):
                key = f"{backend} sparse, {threads} thread{'s' * (threads > 1)}"
                samples.setdefault(key, []).append(timed(threaded(engine, texts, threads), n))
    probes = [gil_probe(1.0) for _ in range(args.rounds)]
    gil = {name: statistics.median(p[name] for p in probes) for name in probes[0]}
    for engine in engines.values():
        engine.close()
    medians = {
        key: (statistics.median(q for q, _ in v), statistics.median(c for _, c in v))
        for key, v in samples.items()
    }
    write_report(medians, gil, args, n)


def write_report(
    medians: dict[str, tuple[float, float]],
    gil: dict[str, float],
    args: argparse.Namespace,
    n: int,
) -> None:
    env = env_summary()
    lines = [
        f"# Lucene sparse arm vs tantivy ({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"`python -m bench.lucene_arm --rounds {args.rounds} --queries {args.queries}`; "
        f"SciFact, {n} test queries, top {TOP_K}, 1000 candidates per arm, in-process engines "
        f"(no gRPC), medians of {args.rounds} alternating rounds. Environment: "
        + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        "| run | queries/s | CPU ms / query |",
        "|---|---|---|",
    ]
    for key, (qps, cpu) in medians.items():
        lines.append(f"| {key} | {qps:.1f} | {cpu:.2f} |")
    ratio = {
        b: medians[f"{b} sparse, 2 threads"][0] / medians[f"{b} sparse, 1 thread"][0]
        for b in ("tantivy", "lucene")
    }
    lines += [
        "",
        "Threads (SPARSE, 2 threads / 1 thread throughput): "
        f"tantivy {ratio['tantivy']:.2f}x, lucene {ratio['lucene']:.2f}x.",
        "",
        "GIL probe (a pure-Python loop's rate while another thread is in a Java call through "
        "pyjnius, or in a Python busy loop, as a fraction of its rate while the other thread "
        f"sleeps): Java call {gil['java call']:.2f}, Python busy loop "
        f"{gil['python busy loop']:.2f} (1 = the GIL is left free).",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-lucene-arm.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (WORK / "measurements").mkdir(parents=True, exist_ok=True)
    measured = {"medians": medians, "gil_probe": gil}
    (WORK / "measurements" / "lucene-arm.json").write_text(json.dumps(measured, indent=1))
    print("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
