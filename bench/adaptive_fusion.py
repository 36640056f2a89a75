"""Cost of adaptive fusion per query, against fixed-alpha min-max interpolation.

    PYTHONPATH=server python bench/adaptive_fusion.py [--queries 225] [--rounds 5]

Builds a BM25-only index of the bundled Cranfield sample in a temporary directory; for each
sample query takes its BM25 list (1000 candidates, the server default) and a dense list of
1000 (a seeded random draw of documents with cosine-like scores: fusion's cost depends on the
lists' lengths and overlap, not on where they came from), then times, in alternating rounds:

- fixed: `fuse_interpolate` (min-max, alpha 0.5, top 10);
- adaptive: what the server adds for ADAPTIVE: the query's document-frequency lookups
  (`engine.searcher._query_stats`' work), the features, the model, and the interpolation.

- choice: the adaptive work alone (lookups, features, model): what ADAPTIVE adds.

Prints the time per query of each (best of ``--rounds`` rounds: the machine's other load only
adds), and the time to load the shipped model file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.highlight import sample_queries
from hybridsearch.cli.index import sample_corpus_path
from hybridsearch.fusion.adaptive import (
    DEFAULT_MODEL_PATH,
    AdaptiveModel,
    QueryStats,
    choose_alpha,
    fuse_adaptive,
)
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.sparse.analysis import query_term_counts
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.types import Normalization, RankedList

DEPTH = 1000
TOP_K = 10


def lists(index: OpenIndex, text: str, rng: np.random.Generator) -> tuple[RankedList, RankedList]:
    """The query's BM25 list and a random dense list of the same index, best first."""
    weights = {term: float(n) for term, n in query_term_counts(text).items()}
    sparse = index.search_sparse(weights, DEPTH, None)
    rows = len(index.ids)
    ordinals = rng.choice(rows, size=min(DEPTH, rows), replace=False)
    scores = np.sort(rng.uniform(0.1, 0.8, size=len(ordinals)))[::-1]
    return RankedList(sparse.ordinals, sparse.scores), RankedList(ordinals, scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=225, help="sample queries to run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    model = AdaptiveModel.load(DEFAULT_MODEL_PATH)
    load_ms = (time.perf_counter() - started) * 1000
    texts = sample_queries()[: args.queries]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample"
        build_index(list(read_corpus(sample_corpus_path())), out, encoder=None)
        index = open_index(out)
        reader = index.sparse
        doc_id = index.ids.__getitem__
        pairs = [(t, *lists(index, t, rng)) for t in texts]

        def fixed() -> None:
            for _, sparse, dense in pairs:
                fuse_interpolate(
                    sparse,
                    dense,
                    alpha=0.5,
                    normalization=Normalization.MIN_MAX,
                    doc_id=doc_id,
                    limit=TOP_K,
                )

        def adaptive() -> None:
            for text, sparse, dense in pairs:
                stats = QueryStats(
                    [reader.doc_freq(t) for t in query_term_counts(text)], reader.num_docs
                )
                fuse_adaptive(sparse, dense, model=model, stats=stats, doc_id=doc_id, limit=TOP_K)

        def choice() -> None:
            for text, sparse, dense in pairs:
                stats = QueryStats(
                    [reader.doc_freq(t) for t in query_term_counts(text)], reader.num_docs
                )
                choose_alpha(model, stats, sparse, dense)

        runs = {"fixed": fixed, "adaptive": adaptive, "choice": choice}
        for function in runs.values():
            function()  # warm up
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.rounds):  # the best round of each: the least disturbed by others
            for name, function in runs.items():
                t0 = time.perf_counter()
                function()
                best[name] = min(best[name], time.perf_counter() - t0)
    per_query = {name: seconds / len(pairs) * 1e6 for name, seconds in best.items()}
    print(
        f"adaptive fusion, {len(pairs)} queries x {args.rounds} rounds, lists of {DEPTH}, "
        f"top {TOP_K}:"
    )
    print(f"  fixed min-max interpolation:          {per_query['fixed']:8.1f} us/query")
    print(f"  adaptive (all of it):                 {per_query['adaptive']:8.1f} us/query")
    print(
        f"  adaptive's extra work (doc freqs, features, model): {per_query['choice']:8.1f} "
        "us/query (goal <= 200)"
    )
    print(f"  model load: {load_ms:.2f} ms ({DEFAULT_MODEL_PATH.name})")


if __name__ == "__main__":
    main()
