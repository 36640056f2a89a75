#!/usr/bin/env python3
"""Measure BM25 variants on the seven shared collections: BM25 alone and min-max hybrid.

    python scripts/sparse_variants.py [--data ../shared/data] [--out var/eval/sparse-variants.json]

Each variant (`VARIANTS`) ranks with `hybridsearch.eval.sparse_variants.Bm25Corpus` (1000
documents per query) and is fused (min-max, alpha 0.5) with the dense arm's cached list of
the same query (`var/eval/arm-runs`, made by ``scripts/train_fusion.py``). The row "tantivy
(the arm)" is the server's own BM25 list from the same cache. ``scripts/eval_all.py`` renders
the JSON into ``docs/effectiveness.md``. Deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hybridsearch.eval.arm_runs import DEFAULT_DIR, find_cached, load
from hybridsearch.eval.collection import load_beir
from hybridsearch.eval.metrics import evaluate
from hybridsearch.eval.sparse_variants import Bm25Corpus, Bm25Variant, remap
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.types import Normalization, RankedList

COLLECTIONS = ("scifact", "cranfield", "cisi", "cacm", "medline", "lisa", "adi")
TANTIVY = "tantivy (the arm)"
RESCORE = "rescore the arm's top 1000: k1 0.9, b 0.4"
PYSERINI = Bm25Variant("k1 0.9, b 0.4", k1=0.9, b=0.4)
VARIANTS = (
    Bm25Variant("re-implementation: k1 1.2, b 0.75"),
    Bm25Variant("stopwords (Lucene's 33)", stopwords=True),
    Bm25Variant("stopwords, query side only", query_stopwords=True),
    PYSERINI,
    Bm25Variant("stopwords + k1 0.9, b 0.4", k1=0.9, b=0.4, stopwords=True),
    Bm25Variant("title weight 2", title_weight=2.0),
    Bm25Variant("title weight 0.5", title_weight=0.5),
    Bm25Variant("b 0.4", b=0.4),
    Bm25Variant("k1 0.9", k1=0.9),
    Bm25Variant("query: stopwords, terms in > 5 % of documents", query_stopwords=True, max_df=0.05),
    Bm25Variant("query: stopwords, terms in > 10 % of documents", query_stopwords=True, max_df=0.1),
    Bm25Variant("query: stopwords, terms in > 20 % of documents", query_stopwords=True, max_df=0.2),
)
DEPTH = 1000


def measure(data: Path, name: str, arm_runs: Path) -> dict[str, dict[str, dict[str, float]]]:
    """variant → {"bm25": metrics, "hybrid": metrics} on one collection."""
    collection = load_beir(data / name)
    path = find_cached(arm_runs, name, DEPTH)
    if path is None:
        raise SystemExit(f"no arm runs of {name} in {arm_runs}: run scripts/train_fusion.py")
    runs = load(path)
    corpus = Bm25Corpus(read_corpus(collection.corpus_path))
    position = {doc_id: i for i, doc_id in enumerate(runs.ids)}
    back = {doc_id: i for i, doc_id in enumerate(corpus.ids)}
    doc_id = runs.ids.__getitem__

    def scored(lists: dict[str, RankedList]) -> dict[str, dict[str, float]]:
        bm25 = {
            q: {doc_id(int(o)): float(s) for o, s in zip(*_cols(r), strict=True)}
            for q, r in lists.items()
        }
        hybrid = {}
        for qid, sparse in lists.items():
            fused = fuse_interpolate(
                sparse,
                runs.queries[qid].dense,
                alpha=0.5,
                normalization=Normalization.MIN_MAX,
                doc_id=doc_id,
                limit=DEPTH,
            )
            hybrid[qid] = {doc_id(d.ordinal): d.score for d in fused}
        return {"bm25": evaluate(bm25, runs.qrels), "hybrid": evaluate(hybrid, runs.qrels)}

    out = {TANTIVY: scored({q: r.sparse for q, r in runs.queries.items()})}
    for variant in VARIANTS:
        lists = {
            qid: remap(corpus.ranked(variant, q.text, DEPTH), corpus.ids, position)
            for qid, q in runs.queries.items()
        }
        out[variant.name] = scored(lists)
    rescored = {}
    for qid, q in runs.queries.items():
        candidates = remap(q.sparse, runs.ids, back)
        rescored[qid] = remap(corpus.rescored(PYSERINI, q.text, candidates), corpus.ids, position)
    out[RESCORE] = scored(rescored)
    for label, figures in out.items():
        print(
            f"{name} {label}: BM25 {figures['bm25']['nDCG@10']:.4f} "
            f"hybrid {figures['hybrid']['nDCG@10']:.4f}",
            flush=True,
        )
    return out


def _cols(ranked: RankedList) -> tuple[list[int], list[float]]:
    return ranked.ordinals.tolist(), ranked.scores.tolist()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--arm-runs", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--collections", default=",".join(COLLECTIONS))
    parser.add_argument("--out", type=Path, default=Path("var/eval/sparse-variants.json"))
    args = parser.parse_args()
    names = [n for n in args.collections.split(",") if n]
    results = {name: measure(args.data, name, args.arm_runs) for name in names}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
