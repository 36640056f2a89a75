"""LanceDB peer (own venv: lancedb): native FTS (BM25) + vector search over the same MiniLM
document vectors, hybrid with LanceDB's RRF and linear-combination rerankers.

    python lancedb_peer.py --index HS_INDEX --corpus corpus.jsonl --queries q.json \
        --model MODEL_DIR --work DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm import MiniLM, timed_percentiles, write_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import lancedb
    import pyarrow as pa
    from lancedb.rerankers import LinearCombinationReranker, RRFReranker

    shutil.rmtree(args.work / "db", ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    vectors = np.load(args.index / "vectors.npy")
    ids = json.loads((args.index / "ids.json").read_text(encoding="utf-8"))
    text_of: dict[str, str] = {}
    with args.corpus.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            text_of[str(row["_id"])] = f"{row.get('title', '')} {row.get('text', '')}".strip()
    started = time.perf_counter()
    db = lancedb.connect(str(args.work / "db"))
    table = db.create_table(
        "docs",
        pa.table(
            {
                "id": pa.array(ids),
                "text": pa.array([text_of[i] for i in ids]),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1]
                ),
            }
        ),
    )
    table.create_fts_index("text")
    build_s = time.perf_counter() - started
    encoder = MiniLM(args.model)
    queries = json.loads(args.queries.read_text(encoding="utf-8"))

    def rows(query) -> list[tuple[str, float]]:  # noqa: ANN001
        out = query.limit(10).to_arrow()
        score = next(c for c in ("_relevance_score", "_score", "_distance") if c in out.column_names)
        values = out[score].to_pylist()
        if score == "_distance":  # smaller is closer: turn into a descending score
            values = [-v for v in values]
        return list(zip(out["id"].to_pylist(), values, strict=True))

    rrf = RRFReranker()
    linear = LinearCombinationReranker(weight=0.5)  # weight of the vector side
    systems = {
        "fts": lambda q: rows(table.search(q, query_type="fts")),
        "vector": lambda q: rows(table.search(encoder.encode(q)).metric("dot")),
        "hybrid_rrf": lambda q: rows(
            table.search(query_type="hybrid").vector(encoder.encode(q)).text(q).rerank(rrf)
        ),
        "hybrid_linear": lambda q: rows(
            table.search(query_type="hybrid").vector(encoder.encode(q)).text(q).rerank(linear)
        ),
    }
    result: dict[str, object] = {"build_s": build_s}
    for name, search in systems.items():
        for _, text in queries[:5]:
            search(text)
        run = {}
        latencies = []
        t0 = time.perf_counter()
        for qid, text in queries:
            q0 = time.perf_counter()
            run[qid] = search(text)
            latencies.append(time.perf_counter() - q0)
        elapsed = time.perf_counter() - t0
        write_run(args.work / f"{name}.trec", run, f"lancedb-{name}")
        result[name] = {
            "qps": len(queries) / elapsed,
            **timed_percentiles(latencies),
            "run": str(args.work / f"{name}.trec"),
        }
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
