"""BM25 at scale: the sparse arm's latency over a synthetic corpus of a million documents,
with the BM25 query as the server builds it (Lucene's 33 stopwords left out) and as it was
built before (every query term kept), measured side by side in one run; and the same
documents in Lucene (`bench.lucene_scale`: the Lucene arm, and Lucene's own pruning top k).

Text as in `bench.scale` (words drawn with their frequencies from the shared collections'
vocabulary, SciFact-like lengths; no vectors: only the sparse arm is measured). Queries: the
SciFact test queries. Each round times every query once per search: tantivy's searches take
turns query by query, then Lucene's do, so the searches of one engine see the same machine;
p50/p99 over all rounds.

A probe then times the query terms found in the most documents, alone, at depths 1 and
1,000: what block-max WAND (tantivy's ``for_each_pruning``, Lucene's top-k collector) saves.
tantivy-py's ``Searcher.search`` (0.26, 0.27) hands tantivy a ``MultiCollector``, which scores
every posting, so a term's top 1 costs about what its top 1,000 does: the cost per query
follows the postings of its terms (hence the stopwords left out), whatever the depth.

    python -m bench.bm25_scale [--docs 1000000] [--rounds 3] [--keep] [--no-lucene] [--label L]

Writes bench/results/<label>-bm25-scale.md (label: today's date) and the JSON beside it; both
give each query form's mean number of terms (``mean_query_terms`` in the JSON), counted from the
very term weights the timed searches send.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import RESULTS, WORK, env_summary, load_queries
from bench.scale import synthetic_docs, vocabulary
from hybridsearch.harness import percentiles_ms
from hybridsearch.sparse.analysis import query_term_counts, term_counts
from hybridsearch.sparse.lucene_jvm import lucene_problem
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
    """Build the sparse-only synthetic index at ``out`` (reused when it is there); seconds.
    The written files are flushed to disk before it returns, so no write-back runs beside
    the timed searches."""
    if (out / "manifest.json").exists():
        return 0.0
    words, p = vocabulary(shared_data)
    started = time.perf_counter()
    build_index(synthetic_docs(docs, words, p, seed=docs), out, encoder=None, force=True)
    seconds = time.perf_counter() - started
    os.sync()
    return seconds


#: A way to run query ``i`` of the list to a depth (what is timed).
Search = Callable[[int, int], object]


#: Each query form's BM25 queries (term to weight, as the arm takes them), in query order.
QueryForms = dict[str, list[dict[str, float]]]


def query_forms(queries: list[str]) -> QueryForms:
    """``queries`` in each BM25 query form of `VARIANTS`."""
    return {name: [make(q) for q in queries] for name, make in VARIANTS.items()}


def tantivy_searches(index: OpenIndex, forms: QueryForms) -> dict[str, Search]:
    """The server's tantivy arm, with each BM25 query form of ``forms``."""

    def search(weights: list[dict[str, float]], i: int, depth: int) -> object:
        return index.search_sparse(weights[i], depth)

    return {name: functools.partial(search, weights) for name, weights in forms.items()}


def measure(searches: dict[str, Search], count: int, rounds: int) -> dict[str, dict[str, object]]:
    """p50/p99 ms per search and depth: every round runs each of ``count`` queries at each
    depth through every search in turn, so all see the same machine."""
    times: dict[tuple[str, int], list[float]] = {(s, d): [] for s in searches for d in DEPTHS}
    for search in searches.values():  # warm the postings every search reads
        for i in range(min(20, count)):
            search(i, 100)
    for _ in range(rounds):
        for i in range(count):
            for depth in DEPTHS:
                for name, search in searches.items():
                    t0 = time.perf_counter()
                    search(i, depth)
                    times[name, depth].append(time.perf_counter() - t0)
    return {
        name: {f"top{depth}": percentiles_ms(times[name, depth]) for depth in DEPTHS}
        for name in searches
    }


def mean_terms(forms: QueryForms) -> dict[str, float]:
    """Mean terms per BM25 query of each query form: the distinct terms the arm searches
    (for the server's form, those left after `query_term_counts` drops the stopwords)."""
    return {
        name: sum(len(weights) for weights in queries) / len(queries) if queries else 0.0
        for name, queries in forms.items()
    }


PROBE_TERMS = 3


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median ms of ``repeats`` runs, after one to warm."""
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


def probe_terms(index: OpenIndex, queries: list[str]) -> list[str]:
    """The ``PROBE_TERMS`` query terms found in the most documents."""
    reader = index.tantivy_reader
    terms = {t for q in queries for t in query_term_counts(q)}
    return sorted(terms, key=reader.doc_freq, reverse=True)[:PROBE_TERMS]


def probe(index: OpenIndex, terms: list[str], repeats: int = 15) -> list[dict[str, object]]:
    """Each term alone as a BM25 query: median ms at depth 1 and 1,000 through the server's
    sparse search."""
    rows: list[dict[str, object]] = []
    for term in terms:
        row: dict[str, object] = {"term": term, "doc_freq": index.tantivy_reader.doc_freq(term)}
        for depth in (1, 1000):
            alone = functools.partial(index.search_sparse, {term: 1.0}, depth)
            row[f"top{depth}_ms"] = median_ms(alone, repeats)
        rows.append(row)
    return rows


def lucene_side(args: argparse.Namespace, terms: list[str]) -> dict[str, object]:
    """`bench.lucene_scale` on the same documents, in a process of its own: the JVM (its
    threads, its heap, the index it maps) never shares a process with tantivy's timings."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "lucene.json"
        command = [
            sys.executable, "-m", "bench.lucene_scale", "--docs", str(args.docs),
            "--rounds", str(args.rounds), "--shared-data", str(args.shared_data),
            "--terms", ",".join(terms), "--out", str(out),
        ]  # fmt: skip
        if args.keep:
            command.append("--keep")
        subprocess.run(command, check=True)
        found: dict[str, object] = json.loads(out.read_text())
        return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--keep", action="store_true", help="keep the indexes for a re-run")
    parser.add_argument(
        "--no-lucene", action="store_true", help="tantivy alone (no Lucene index of the corpus)"
    )
    parser.add_argument(
        "--label", default=datetime.date.today().isoformat(), help="results file name prefix"
    )
    args = parser.parse_args()
    env = env_summary()
    out = WORK / "indexes" / f"bm25-synthetic-{args.docs}"
    lucene_skipped = "left out (--no-lucene)" if args.no_lucene else lucene_problem()
    build_s = build(out, args.docs, args.shared_data)
    queries = [text for _, text in load_queries(args.shared_data / "scifact")]
    forms = query_forms(queries)
    mean_query_terms = mean_terms(forms)
    try:
        opened = open_index(out)
        figures = measure(tantivy_searches(opened, forms), len(queries), args.rounds)
        terms = probe_terms(opened, queries)
        probed = probe(opened, terms)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    lucene: dict[str, object] = {}
    if lucene_skipped is None:
        lucene = lucene_side(args, terms)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.label}-bm25-scale.json").write_text(
        json.dumps(
            {
                "docs": args.docs,
                "build_s": build_s,
                "queries": len(queries),
                "mean_query_terms": mean_query_terms,
                "figures": figures,
                "probe": probed,
                "lucene": lucene,
                "lucene_skipped": lucene_skipped,
            },
            indent=1,
        )
        + "\n"
    )
    text = report(
        args,
        env,
        len(queries),
        (figures, mean_query_terms, probed, build_s),
        lucene=lucene,
        lucene_skipped=lucene_skipped,
    )
    (RESULTS / f"{args.label}-bm25-scale.md").write_text(text)
    print(text)
    return 0


def report(
    args: argparse.Namespace,
    env: dict[str, str],
    queries: int,
    tantivy: tuple[dict[str, dict[str, object]], dict[str, float], list[dict[str, object]], float],
    *,
    lucene: dict[str, object],
    lucene_skipped: str | None,
) -> str:
    """The results file's text (``tantivy``: figures, mean query terms, probe, build s)."""
    figures, terms, probed, build_s = tantivy
    rows = {
        f"tantivy, {name}": row | {"terms": f"{terms[name]:.1f}"} for name, row in figures.items()
    }
    lucene_figures = lucene.get("figures", {})
    assert isinstance(lucene_figures, dict)
    rows |= {name: row | {"terms": "–"} for name, row in lucene_figures.items()}
    lucene_rows = lucene.get("probe", [])
    assert isinstance(lucene_rows, list)
    lucene_probe = {str(r["term"]): r for r in lucene_rows}
    built = [f"tantivy {build_s:.0f} s"] if build_s else []
    lucene_build_s = lucene.get("build_s")
    built += [f"Lucene {lucene_build_s:.0f} s"] if lucene_build_s else []
    lines = [
        f"# BM25 at {args.docs:,} documents: {datetime.date.today().isoformat()}",
        "",
        f"`python -m bench.bm25_scale --docs {args.docs} --rounds {args.rounds}`; "
        f"{env['cpus']} CPUs ({env['cpu']}), commit {env['commit']}, load average at start "
        f"{env['load_avg_at_start']}. Synthetic text as `bench.scale` makes it (no vectors); "
        f"{queries} SciFact test queries, {args.rounds} rounds, the searches of one engine "
        "taking turns query by query (tantivy first, then Lucene in a process of its own)."
        + (f" Sparse-only builds: {', '.join(built)}." if built else ""),
        "",
        "| BM25 search | mean terms | "
        + " | ".join(f"top{d} p50 ms | top{d} p99 ms" for d in DEPTHS)
        + " |",
        "|---|---:|" + "---:|---:|" * len(DEPTHS),
    ]
    for name, row in rows.items():
        cells = []
        for depth in DEPTHS:
            p = row[f"top{depth}"]
            assert isinstance(p, dict)
            cells += [f"{p['p50']:.2f}", f"{p['p99']:.2f}"]
        lines.append(f"| {name} | {row['terms']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Lucene rows: the same documents indexed by Anserini (`--sparse-backend lucene`; its "
        "analyser drops its own stopwords, BM25 k1 0.9 / b 0.4). The arm sorts its top k by "
        "score then id, as Pyserini does; the score-only top k is Lucene's own collector on "
        "the same query, which skips postings blocks that cannot enter the top k."
        if lucene
        else f"No Lucene rows: {lucene_skipped}.",
        "",
        "Block-max pruning: the query terms in the most documents, each alone. tantivy-py's "
        "`Searcher.search` collects through a `MultiCollector`, which scores every posting "
        "(tantivy's block-max WAND runs only under its own `TopDocs`)"
        + ("; Lucene's score-only top k prunes." if lucene else "."),
        "",
        "| term | documents | tantivy top 1 ms | tantivy top 1000 ms |"
        + (" Lucene documents | Lucene top 1 ms | Lucene top 1000 ms |" if lucene else ""),
        "|---|---:|---:|---:|" + ("---:|---:|---:|" if lucene else ""),
    ]
    for row in probed:
        line = (
            f"| {row['term']} | {row['doc_freq']:,} | {row['top1_ms']:.2f} | "
            f"{row['top1000_ms']:.2f} |"
        )
        other = lucene_probe.get(str(row["term"]))
        if other is not None:
            line += f" {other['doc_freq']:,} | {other['top1_ms']:.2f} | {other['top1000_ms']:.2f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
