"""The Lucene side of `bench.bm25_scale`: the same synthetic corpus in a Lucene index.

Run by `bench.bm25_scale` in a process of its own (so no JVM shares a process with tantivy's
timings), it times two ways to ask the index, taking turns query by query:

- ``arm``: the `--sparse-backend lucene` arm as the server runs it (`LuceneReader.search_text`:
  Anserini's analyser and query, BM25 k1 0.9 / b 0.4, top k sorted by score then by id, the
  search on a Java thread);
- ``top-k``: Lucene's own ``IndexSearcher.search(query, k)`` on the same query, called
  directly: its score-only collector, which skips the blocks of postings that cannot enter the
  top k (block-max WAND), the pruning tantivy-py's ``MultiCollector`` never runs. Its ties are
  not broken by id, so it is a bound on what pruning gives here, not a list the server could
  serve as it is.

Needs the ``lucene`` extra and the Anserini jar (`make bench` installs both); without them
`bench.bm25_scale` says so and measures tantivy alone.

    python -m bench.lucene_scale --docs N --terms T1,T2 --out FILE.json [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.bm25_scale import Search, measure, median_ms
from bench.common import WORK, load_queries
from bench.scale import synthetic_docs, vocabulary
from hybridsearch.sparse.lucene_index import CONTENTS_FIELD, DEFAULT_B, DEFAULT_K1, LuceneReader
from hybridsearch.sparse.lucene_jvm import java_cast, java_class
from hybridsearch.storage.lucene_build import build_lucene_index
from hybridsearch.storage.manifest import SPARSE_DIR
from hybridsearch.types import Document


def build_lucene(out: Path, docs: Iterable[Document]) -> float:
    """Build the sparse-only Lucene index at ``out`` (reused when it is there); seconds.
    Flushed to disk before it returns, as `bench.bm25_scale.build`."""
    if (out / "manifest.json").exists():
        return 0.0
    started = time.perf_counter()
    build_lucene_index(docs, out, encoder=None, encoder_info=None, force=True)
    seconds = time.perf_counter() - started
    os.sync()
    return seconds


class TopKSearcher:
    """Lucene's score-only top k over the index at ``path`` (its own reader and searcher)."""

    def __init__(self, path: Path) -> None:
        directory = java_class("org.apache.lucene.store.FSDirectory").open(
            java_class("java.nio.file.Paths").get(str(path / SPARSE_DIR))
        )
        reader = java_class("org.apache.lucene.index.DirectoryReader").open(directory)
        self._reader = reader
        self._searcher = java_class("org.apache.lucene.search.IndexSearcher")(
            java_cast("org.apache.lucene.index.IndexReader", reader)
        )
        bm25 = java_class("org.apache.lucene.search.similarities.BM25Similarity")
        self._searcher.setSimilarity(bm25(DEFAULT_K1, DEFAULT_B))
        self._analyzer = java_class(
            "io.anserini.analysis.DefaultEnglishAnalyzer"
        ).newDefaultInstance()
        self._generator = java_class("io.anserini.search.query.BagOfWordsQueryGenerator")()

    def search(self, text: str, depth: int) -> Any:
        """Run the query; Lucene's ``TopDocs`` (left in Java: reading its hits from Python
        would cost a JNI object per hit, which is not the search)."""
        query = self._generator.buildQuery(CONTENTS_FIELD, self._analyzer, text)
        return self._searcher.search(query, depth)

    def doc_freq(self, text: str) -> int:
        """Documents holding ``text`` after Anserini's analyser (0 when it analyses to none)."""
        tokens = java_class("io.anserini.analysis.AnalyzerUtils").analyze(self._analyzer, text)
        analysed = [str(t) for t in tokens.toArray()]
        if not analysed:
            return 0
        term = java_class("org.apache.lucene.index.Term")(CONTENTS_FIELD, analysed[0])
        n: int = self._reader.docFreq(term)
        return n

    def close(self) -> None:
        """Release the index files."""
        self._reader.close()


def searches(arm: LuceneReader, top_k: TopKSearcher, queries: list[str]) -> dict[str, Search]:
    """The arm as served, and Lucene's score-only top k."""

    def served(i: int, depth: int) -> object:
        return arm.search_text(queries[i], depth)

    def score_only(i: int, depth: int) -> object:
        return top_k.search(queries[i], depth)

    return {
        "Lucene arm (`--sparse-backend lucene`)": served,
        "Lucene score-only top k (block-max WAND)": score_only,
    }


def probe(top_k: TopKSearcher, terms: list[str], repeats: int = 15) -> list[dict[str, object]]:
    """Each term alone through the score-only top k: median ms at depth 1 and 1,000."""
    rows: list[dict[str, object]] = []
    for term in terms:
        row: dict[str, object] = {"term": term, "doc_freq": top_k.doc_freq(term)}
        for depth in (1, 1000):
            row[f"top{depth}_ms"] = median_ms(functools.partial(top_k.search, term, depth), repeats)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--terms", default="", help="terms to time alone, comma-separated")
    parser.add_argument("--out", type=Path, required=True, help="the figures (JSON)")
    parser.add_argument("--keep", action="store_true", help="keep the index for a re-run")
    args = parser.parse_args()
    out = WORK / "indexes" / f"bm25-synthetic-lucene-{args.docs}"
    words, p = vocabulary(args.shared_data)
    docs = synthetic_docs(args.docs, words, p, seed=args.docs)  # bench.bm25_scale's documents
    build_s = build_lucene(out, docs)
    queries = [text for _, text in load_queries(args.shared_data / "scifact")]
    arm = LuceneReader(out / SPARSE_DIR)
    top_k = TopKSearcher(out)
    try:
        figures = measure(searches(arm, top_k, queries), len(queries), args.rounds)
        probed = probe(top_k, [t for t in args.terms.split(",") if t])
    finally:
        arm.close()
        top_k.close()
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    found = {"build_s": build_s, "figures": figures, "probe": probed}
    args.out.write_text(json.dumps(found, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
