"""BM25 at scale: the sparse arm's latency over a synthetic corpus of a million documents,
with the BM25 query as the server builds it (Lucene's 33 stopwords left out) and as it was
built before (every query term kept), measured side by side in one run.

Text as in `bench.scale` (words drawn with their frequencies from the shared collections'
vocabulary, SciFact-like lengths; no vectors: only the sparse arm is measured). Queries: the
SciFact test queries. Each round times every query once per variant, the variants taking
turns query by query, so both see the same machine; p50/p99 over all rounds.

A probe then times the query terms found in the most documents, alone, at depths 1 and
1,000: what tantivy's block-max WAND (``for_each_pruning``) would save. tantivy-py's
``Searcher.search`` (0.26, 0.27) hands tantivy a ``MultiCollector``, which scores every
posting, so a term's top 1 costs about what its top 1,000 does: the cost per query follows
the postings of its terms (hence the stopwords left out), whatever the depth.

    python -m bench.bm25_scale [--docs 1000000] [--rounds 3] [--keep] [--label L]

Writes bench/results/<label>-bm25-scale.md (label: today's date) and the JSON beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import RESULTS, WORK, env_summary, load_queries
from bench.scale import synthetic_docs, vocabulary
from hybridsearch.harness import percentiles_ms
from hybridsearch.sparse.analysis import query_term_counts, term_counts
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import OpenIndex, open_index

DEPTHS = (10, 100, 1000)
VARIANTS: dict[str, Callable[[str], dict[str, float]]] = {
    "stopwords left out (the server)": lambda q: {
        t: float(n) for t, n in query_term_counts(q).items()
    },
    "every term kept (before)": lambda q: {t: float(n) for t, n in term_counts(q).items()},
}


def build(out: Path, docs: int, shared_data: Path) -> float:
    """Build the sparse-only synthetic index at ``out`` (reused when it is there)."""
    if (out / "manifest.json").exists():
        return 0.0
    words, p = vocabulary(shared_data)
    started = time.perf_counter()
    build_index(synthetic_docs(docs, words, p, seed=docs), out, encoder=None, force=True)
    return time.perf_counter() - started


def measure(index: OpenIndex, queries: list[str], rounds: int) -> dict[str, dict[str, object]]:
    """p50/p99 ms per variant and depth, and the mean number of query terms."""
    weights = {name: [make(q) for q in queries] for name, make in VARIANTS.items()}
    times: dict[tuple[str, int], list[float]] = {(v, d): [] for v in VARIANTS for d in DEPTHS}
    for name in VARIANTS:  # warm the postings both variants read
        for w in weights[name][:20]:
            index.search_sparse(w, 100)
    for _ in range(rounds):
        for i in range(len(queries)):
            for depth in DEPTHS:
                for name in VARIANTS:
                    t0 = time.perf_counter()
                    index.search_sparse(weights[name][i], depth)
                    times[name, depth].append(time.perf_counter() - t0)
    out: dict[str, dict[str, object]] = {}
    for name in VARIANTS:
        terms = sum(len(w) for w in weights[name]) / len(queries)
        out[name] = {"terms": terms}
        for depth in DEPTHS:
            out[name][f"top{depth}"] = percentiles_ms(times[name, depth])
    return out


PROBE_TERMS = 3


def probe(index: OpenIndex, queries: list[str], repeats: int = 15) -> list[dict[str, object]]:
    """The ``PROBE_TERMS`` query terms in the most documents, each alone as a BM25 query:
    median ms at depth 1 and 1,000 (through the server's sparse search)."""
    reader = index.tantivy_reader
    terms = {t for q in queries for t in query_term_counts(q)}
    frequent = sorted(terms, key=reader.doc_freq, reverse=True)[:PROBE_TERMS]
    rows: list[dict[str, object]] = []
    for term in frequent:
        row: dict[str, object] = {"term": term, "doc_freq": reader.doc_freq(term)}
        for depth in (1, 1000):
            index.search_sparse({term: 1.0}, depth)  # warm
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                index.search_sparse({term: 1.0}, depth)
                times.append(time.perf_counter() - t0)
            row[f"top{depth}_ms"] = 1000 * sorted(times)[len(times) // 2]
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--keep", action="store_true", help="keep the index for a re-run")
    parser.add_argument(
        "--label", default=datetime.date.today().isoformat(), help="results file name prefix"
    )
    args = parser.parse_args()
    out = WORK / "indexes" / f"bm25-synthetic-{args.docs}"
    build_s = build(out, args.docs, args.shared_data)
    queries = [text for _, text in load_queries(args.shared_data / "scifact")]
    try:
        opened = open_index(out)
        figures = measure(opened, queries, args.rounds)
        probed = probe(opened, queries)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    env = env_summary()
    machine = (
        f"{env['cpus']} CPUs ({env['cpu']}), commit {env['commit']}, load average at start "
        f"{env['load_avg_at_start']}"
    )
    day = datetime.date.today().isoformat()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.label}-bm25-scale.json").write_text(
        json.dumps(
            {"docs": args.docs, "build_s": build_s, "figures": figures, "probe": probed}, indent=1
        )
        + "\n"
    )
    lines = [
        f"# BM25 at {args.docs:,} documents: {day}",
        "",
        f"`python -m bench.bm25_scale --docs {args.docs} --rounds {args.rounds}`; "
        f"{machine}. Synthetic text as `bench.scale` makes it (no vectors); "
        f"{len(queries)} SciFact test queries, {args.rounds} rounds, the two query forms "
        "taking turns query by query."
        + (f" Sparse-only build: {build_s:.0f} s." if build_s else ""),
        "",
        "| BM25 query | mean terms | "
        + " | ".join(f"top{d} p50 ms | top{d} p99 ms" for d in DEPTHS)
        + " |",
        "|---|---:|" + "---:|---:|" * len(DEPTHS),
    ]
    for name, row in figures.items():
        cells = []
        for depth in DEPTHS:
            p = row[f"top{depth}"]
            assert isinstance(p, dict)
            cells += [f"{p['p50']:.2f}", f"{p['p99']:.2f}"]
        lines.append(f"| {name} | {row['terms']:.1f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "No block-max pruning through tantivy-py: the query terms in the most documents, each "
        "alone (tantivy-py's `Searcher.search` collects through a `MultiCollector`, which "
        "scores every posting; tantivy's block-max WAND runs only under its own `TopDocs`):",
        "",
        "| term | documents | top 1 ms | top 1000 ms |",
        "|---|---:|---:|---:|",
    ]
    for row in probed:
        lines.append(
            f"| {row['term']} | {row['doc_freq']:,} | {row['top1_ms']:.2f} | "
            f"{row['top1000_ms']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{args.label}-bm25-scale.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
