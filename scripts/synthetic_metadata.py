"""Attach deterministic synthetic typed metadata to a BEIR corpus (for filter tests and demos).

python scripts/synthetic_metadata.py --corpus ../shared/data/scifact/corpus.jsonl --out DIR
    writes DIR/corpus.jsonl and DIR/schema.json (fields: hybridsearch.eval.synthetic_metadata)
... --index-cache CACHE --model MODEL_DIR
    also builds (or reuses) the hybrid index with that metadata in the eval index cache
    CACHE and prints its path as the last line
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybridsearch.eval.synthetic_metadata import SCHEMA, attach, metadata_index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a BEIR corpus.jsonl")
    parser.add_argument("--out", type=Path, help="write corpus.jsonl and schema.json here")
    parser.add_argument("--index-cache", type=Path, help="build the index in this cache")
    parser.add_argument("--model", type=Path, help="model directory (with --index-cache)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.out is None and args.index_cache is None:
        parser.error("give --out, --index-cache, or both")
    if args.out is not None:
        corpus = attach(args.corpus, args.out)
        print(f"wrote {corpus} and {args.out / 'schema.json'} ({len(SCHEMA.fields)} fields)")
    if args.index_cache is not None:
        if args.model is None:
            parser.error("--index-cache needs --model")
        from hybridsearch.config import Device  # noqa: PLC0415 (loads onnxruntime)
        from hybridsearch.engine.loader import (  # noqa: PLC0415
            encoder_info_of,
            load_query_encoder,
        )

        encoder = load_query_encoder(args.model, Device.CPU)
        index = metadata_index(
            args.corpus,
            encoder,
            encoder_info_of(encoder),
            args.index_cache,
            progress=not args.no_progress,
        )
        print(index)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
