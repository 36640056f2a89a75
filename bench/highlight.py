"""Cost of highlights: BM25 top 10 on the bundled Cranfield sample, with and without them.

    PYTHONPATH=server python bench/highlight.py [--queries 225] [--rounds 3]

Builds a BM25-only index of the sample corpus in a temporary directory, runs every sample
query in sparse mode (top_k 10, no stored fields asked for) once plain and once with
``highlight`` (max_chars 200), in alternating rounds, and prints the mean time per query and
the extra time per hit that highlighting costs (stored-field fetch + analysis + window).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

from hybridsearch.cli.index import sample_corpus_path
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import HighlightSettings, Query, RetrievalMode

TOP_K = 10


def sample_queries() -> list[str]:
    path = resources.files("hybridsearch") / "data" / "cranfield-queries.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def run(searcher: HybridSearcher, queries: list[Query]) -> tuple[float, int]:
    """Seconds for all queries, and hits returned."""
    started = time.perf_counter()
    hits = sum(len(searcher.search(q).hits) for q in queries)
    return time.perf_counter() - started, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=225, help="sample queries to run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = sample_queries()[: args.queries]
    plain = [Query(text=t, top_k=TOP_K, mode=RetrievalMode.SPARSE) for t in texts]
    marked = [
        Query(text=t, top_k=TOP_K, mode=RetrievalMode.SPARSE, highlight=HighlightSettings(200))
        for t in texts
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample"
        build_index(list(read_corpus(sample_corpus_path())), out, encoder=None)
        searcher = HybridSearcher(open_index(out), None)
        run(searcher, plain + marked)  # warm up
        plain_s = marked_s = 0.0
        hits = 0
        for _ in range(args.rounds):
            seconds, _ = run(searcher, plain)
            plain_s += seconds
            seconds, hits = run(searcher, marked)
            marked_s += seconds
        searcher.close()
    n = args.rounds * len(texts)
    per_hit_us = (marked_s - plain_s) / (args.rounds * hits) * 1e6
    print(f"queries {len(texts)} x {args.rounds} rounds, top_k {TOP_K}, {hits} hits per round")
    print(f"no highlight   {plain_s / n * 1e6:8.0f} us/query")
    print(f"highlight      {marked_s / n * 1e6:8.0f} us/query")
    print(f"highlight cost {per_hit_us:8.1f} us/hit")


if __name__ == "__main__":
    main()
