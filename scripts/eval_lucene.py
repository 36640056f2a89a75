#!/usr/bin/env python3
"""The Lucene sparse arm next to tantivy's on the seven shared collections (`make eval`).

    python scripts/eval_lucene.py [--data ../shared/data] [--arm-runs var/eval/arm-runs]
        [--index-cache var/eval-indexes] [--out var/eval/lucene-arm.json]

Needs the cached arm runs `scripts/train_fusion.py` writes (the dense lists are reused from
there) and the `lucene` extra. BM25, hybrid min-max / z-score (alpha 0.5) and RRF (k 60) for
both BM25 arms (`hybridsearch.eval.lucene_arm`); ``scripts/eval_all.py`` renders the JSON
into docs/effectiveness.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hybridsearch.eval.arm_runs import find_cached, load
from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.lucene_arm import lucene_bm25_index, lucene_runs, method_metrics

COLLECTIONS = ("scifact", "cranfield", "cisi", "cacm", "medline", "lisa", "adi")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--arm-runs", type=Path, default=Path("var/eval/arm-runs"))
    parser.add_argument("--index-cache", type=Path, default=Path("var/eval-indexes"))
    parser.add_argument("--out", type=Path, default=Path("var/eval/lucene-arm.json"))
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    for name in COLLECTIONS:
        cached = find_cached(args.arm_runs, name)
        if cached is None:
            print(f"{name}: no cached arm runs in {args.arm_runs}; run scripts/train_fusion.py")
            return 1
        started = time.perf_counter()
        tantivy = load(cached)
        index = lucene_bm25_index(load_beir(args.data / name), args.index_cache, name)
        lucene = lucene_runs(index, tantivy)
        results[name] = {
            "queries": len(tantivy.qrels),
            "documents_lucene": len(index.ids),
            "tantivy": method_metrics(tantivy),
            "lucene": method_metrics(lucene),
        }
        ndcg = {s: results[name][s]["hybrid min-max"]["nDCG@10"] for s in ("tantivy", "lucene")}  # type: ignore[index]
        print(f"{name}: min-max nDCG@10 tantivy {ndcg['tantivy']:.3f} lucene {ndcg['lucene']:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
