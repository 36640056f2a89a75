"""LanceDB peer (own venv: lancedb): native FTS (BM25) + vector search over the same MiniLM
document vectors, hybrid with LanceDB's RRF and linear-combination rerankers.

Throughput: sequential (scored run), and each hybrid from 2 and 4 Python threads at once on the
one table (the sync API hands every query to LanceDB's background event loop, which is made for
callers on several threads; the rerankers keep no per-query state).

    python -m bench.peers.lancedb_peer --index HS_INDEX --corpus corpus.jsonl --queries q.json \
        --model MODEL_DIR --work DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers.minilm import (
    ENCODER_THREADS,
    MiniLM,
    Search,
    measure_concurrent,
    measure_sequential,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    # Only the peer's own venv has LanceDB: imported after --help has had its chance.
    import lancedb  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    from lancedb.index import FTS  # noqa: PLC0415
    from lancedb.rerankers import LinearCombinationReranker, RRFReranker  # noqa: PLC0415

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
    # FTS() defaults are create_fts_index's (deprecated since 0.25): simple tokenizer, English
    # stemming and stop words, lower case, ASCII folding.
    table.create_index("text", config=FTS())
    build_s = time.perf_counter() - started
    encoder = MiniLM(args.model)
    concurrent_encoder = MiniLM(args.model, intra_op_threads=1)
    queries = json.loads(args.queries.read_text(encoding="utf-8"))

    def rows(query: Any) -> list[tuple[str, float]]:  # a LanceDB query builder
        out = query.limit(10).to_arrow()
        score = next(
            c for c in ("_relevance_score", "_score", "_distance") if c in out.column_names
        )
        values = out[score].to_pylist()
        if score == "_distance":  # smaller is closer: turn into a descending score
            values = [-v for v in values]
        return list(zip(out["id"].to_pylist(), values, strict=True))

    rrf = RRFReranker()
    linear = LinearCombinationReranker(weight=0.5)  # weight of the vector side

    def hybrids(model: MiniLM) -> dict[str, Search]:
        return {
            "hybrid_rrf": lambda q: rows(
                table.search(query_type="hybrid").vector(model.encode(q)).text(q).rerank(rrf)
            ),
            "hybrid_linear": lambda q: rows(
                table.search(query_type="hybrid").vector(model.encode(q)).text(q).rerank(linear)
            ),
        }

    systems: dict[str, Search] = {
        "fts": lambda q: rows(table.search(q, query_type="fts")),
        "vector": lambda q: rows(table.search(encoder.encode(q)).metric("dot")),
        **hybrids(encoder),
    }
    concurrent = hybrids(concurrent_encoder)
    result: dict[str, object] = {"build_s": build_s, "encoder_threads": ENCODER_THREADS}
    for name, search in systems.items():
        run, stats = measure_sequential(
            search, queries, args.work / f"{name}.trec", f"lancedb-{name}"
        )
        if name in concurrent:
            stats |= measure_concurrent(concurrent[name], queries, run)
        result[name] = stats
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
