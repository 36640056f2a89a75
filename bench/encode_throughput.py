"""Documents/second and tokens/second of `OnnxEncoder.encode_documents` on a BEIR corpus.

    python -m bench.encode_throughput --model-dir MODEL --corpus corpus.jsonl \
        --docs 1000 --batch-size 32 --max-length 256 128
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from itertools import islice
from pathlib import Path

from hybridsearch.encoders.config import load_config
from hybridsearch.encoders.onnx_encoder import OnnxEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, nargs="+", default=[256])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    with args.corpus.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in islice(lines, args.docs)]
    texts = [f"{row.get('title', '')} {row.get('text', '')}" for row in rows]
    base = load_config(args.model_dir)
    print(f"cpus={os.cpu_count()} docs={len(texts)} batch_size={args.batch_size}")
    for max_length in args.max_length:
        config = dataclasses.replace(base, max_length=max_length)
        encoder = OnnxEncoder(
            args.model_dir, config, intra_op_threads=args.threads, batch_size=args.batch_size
        )
        encoder.encode_documents(texts[: args.batch_size])  # warm-up
        tokens = encoder.count_tokens(texts)
        cpu_start, start = time.process_time(), time.perf_counter()
        encoder.encode_documents(texts)
        seconds = time.perf_counter() - start
        # CPU seconds of this process: robust when other work shares the machine.
        cpu_seconds = time.process_time() - cpu_start
        print(
            f"max_length={max_length} provider={encoder.provider} seconds={seconds:.2f} "
            f"docs/s={len(texts) / seconds:.1f} tokens/s={tokens / seconds:.0f} "
            f"tokens={tokens} mean_tokens/doc={tokens / len(texts):.1f} "
            f"cpu_seconds={cpu_seconds:.1f} cpu_ms/doc={1000 * cpu_seconds / len(texts):.1f} "
            f"load_avg_1m={os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
