"""HNSW recall@10 vs exact on real MiniLM vectors: SciFact documents, its test queries encoded
with the same model (the synthetic scale runs use random vectors, HNSW's worst case).

    python -m bench.ann_recall --index bench/.work/indexes/scifact --model MODEL --queries Q
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import load_queries
from hybridsearch.config import Device
from hybridsearch.dense.exact import ExactDenseIndex
from hybridsearch.dense.hnsw import HnswDenseIndex, HnswParams, build_hnsw
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.storage.index_dir import open_index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    index = open_index(args.index)
    assert index.vectors is not None and index.manifest.encoder is not None
    encoder = load_query_encoder(
        args.model, Device.CPU, max_length=index.manifest.encoder.max_length
    )
    texts = [t for _, t in load_queries(args.collection)]
    queries = encoder.encode_queries(texts)
    truth = [[d.ordinal for d in h] for h in ExactDenseIndex(index.vectors).search(queries, 10)]
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.faiss"
        t0 = time.perf_counter()
        build_hnsw(np.asarray(index.vectors), path, HnswParams())
        result["build_s"] = time.perf_counter() - t0
        for ef in (16, 32, 64, 128):
            graph = HnswDenseIndex(path, index.vectors, ef_search=ef)
            found = [[d.ordinal for d in h] for h in graph.search(queries, 10)]
            hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
            result[f"ef{ef}"] = hits / (10 * len(texts))
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
