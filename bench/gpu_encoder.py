"""The default encoder's ceiling on a GPU where onnxruntime has no CUDA provider: the ONNX
model's weights in torch (`bench.minilm_forward`), fp16, against onnxruntime on the CPU.

Measures, on SciFact: the parity of the forward with `OnnxEncoder` (lowest cosine over
``--parity`` documents); documents/s by batch size (batches of similar token length, with and
without tokenisation); queries/s by batch size and the batch-1 p50 latency; the same
machine's CPU onnxruntime at batch 32 for the ratio.

    python -m bench.gpu_encoder --device cuda            # on the GPU box (bench/gpu.sh)
    python -m bench.gpu_encoder --dry-run                # CPU, numpy, small: checks it runs

A real run writes bench/results/<date>-gpu-encoder.md; a dry run writes only under
bench/.work/ (its figures are CPU figures and must never pass for GPU ones).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench.common import REPO, RESULTS, WORK, env_summary, load_queries
from bench.minilm_forward import MiniLM, NumpyOps, Ops, TorchOps, load_weights
from hybridsearch.encoders.config import load_config
from hybridsearch.encoders.onnx_encoder import load_tokenizer
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.types import Device

T = TypeVar("T")


def backend(name: str, device: str) -> tuple[Ops, str]:
    """(array backend, its description): torch on ``device`` (fp16 on CUDA), or numpy."""
    if name == "numpy":
        if device != "cpu":
            raise SystemExit("the numpy backend runs on the CPU only (use --device cpu)")
        return NumpyOps(), "numpy float32 (CPU)"
    try:
        import torch  # noqa: PLC0415  (the GPU box's own torch; not a project dependency)
    except ModuleNotFoundError:
        if name == "torch" or device != "cpu":
            raise SystemExit("torch is not installed: the GPU measurement needs it") from None
        return NumpyOps(), "numpy float32 (CPU; torch not installed)"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device")
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.set_grad_enabled(False)
    label = f"torch {torch.__version__} {str(dtype).removeprefix('torch.')} on {device}"
    if device == "cuda":
        label += f" ({torch.cuda.get_device_name(0)})"
    return TorchOps(torch, device, dtype), label


def best_of(repeats: int, run: Callable[[T], object], batches: Sequence[T]) -> float:
    """Seconds of the fastest of ``repeats`` passes of ``run`` over every batch."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            run(batch)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "var/models/all-MiniLM-L6-v2")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "numpy"])
    parser.add_argument("--docs", type=int, default=5183, help="SciFact documents encoded")
    parser.add_argument("--doc-batches", default="32,64,128,256,512")
    parser.add_argument("--query-batches", default="1,8,32,128")
    parser.add_argument("--queries", type=int, default=300, help="SciFact test queries")
    parser.add_argument("--parity", type=int, default=64, help="documents checked vs ORT")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-length", type=int, help="token limit (default: the model's)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, small, not a result")
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.docs, args.queries, args.parity, args.repeats = "cpu", 16, 16, 8, 1
        args.doc_batches, args.query_batches, args.max_length = "8", "1,8", 64
    model = args.model.resolve()
    config = load_config(model)
    max_length = args.max_length or config.max_length
    ops, label = backend(args.backend, args.device)
    print(f"== encoder forward: {label}", flush=True)
    minilm = MiniLM(load_weights(model / config.onnx_file), ops)
    tokenizer = load_tokenizer(model / config.tokenizer_file, max_length)
    with (args.shared_data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for _, line in zip(range(args.docs), lines, strict=False)]
    docs = [f"{r.get('title', '')} {r.get('text', '')}".strip() for r in rows]
    queries = [text for _, text in load_queries(args.shared_data / "scifact")][: args.queries]

    def encode(texts: list[str]) -> np.ndarray[Any, Any]:
        e = tokenizer.encode_batch(texts)
        ids = np.array([x.ids for x in e], dtype=np.int64)
        mask = np.array([x.attention_mask for x in e], dtype=np.int64)
        types = np.array([x.type_ids for x in e], dtype=np.int64)
        return minilm.encode(ids, mask, types)

    onnx = load_query_encoder(model, Device.CPU, max_length=max_length)
    sample = docs[: args.parity]
    parity = float(np.sum(encode(sample) * onnx.encode_documents(sample), axis=1).min())
    print(f"   parity with onnxruntime (CPU): lowest cosine {parity:.6f}", flush=True)
    by_length = [docs[i] for i in np.argsort([len(t) for t in docs], kind="stable")]
    doc_rows: list[dict[str, float]] = []
    for size in [int(s) for s in args.doc_batches.split(",")]:
        batches = [by_length[i : i + size] for i in range(0, len(by_length), size)]
        encode(batches[-1])  # warm-up at this shape
        tokenised = [tokenizer.encode_batch(b) for b in batches]
        arrays = [
            tuple(np.array([getattr(x, f) for x in e], dtype=np.int64)
                  for f in ("ids", "attention_mask", "type_ids"))
            for e in tokenised
        ]  # fmt: skip
        model_s = best_of(args.repeats, lambda a: minilm.encode(*a), arrays)
        total_s = best_of(args.repeats, encode, batches)
        doc_rows.append({"batch": size, "model_docs_per_s": len(docs) / model_s,
                         "docs_per_s": len(docs) / total_s})  # fmt: skip
        print(f"   documents batch {size}: {len(docs) / total_s:.0f}/s "
              f"(model only {len(docs) / model_s:.0f}/s)", flush=True)  # fmt: skip
    query_rows: list[dict[str, float]] = []
    for size in [int(s) for s in args.query_batches.split(",")]:
        batches = [queries[i : i + size] for i in range(0, len(queries), size)]
        encode(batches[0])
        seconds = best_of(args.repeats, encode, batches)
        query_rows.append({"batch": size, "queries_per_s": len(queries) / seconds})
        print(f"   queries batch {size}: {len(queries) / seconds:.0f}/s", flush=True)
    single = []
    for text in queries[:100]:
        start = time.perf_counter()
        encode([text])
        single.append(time.perf_counter() - start)
    cpu_docs = docs[: min(len(docs), 256)]
    cpu_doc_s = best_of(1, lambda d: onnx.encode_documents(d, batch_size=32), [cpu_docs])
    cpu_q_s = best_of(1, onnx.encode_queries, [queries[i : i + 32]
                                               for i in range(0, len(queries), 32)])  # fmt: skip
    result = {
        "env": env_summary(),
        "backend": label,
        "dry_run": args.dry_run,
        "docs": len(docs),
        "max_length": max_length,
        "queries": len(queries),
        "parity_min_cosine": parity,
        "documents": doc_rows,
        "queries_by_batch": query_rows,
        "query_batch1_p50_ms": 1000 * float(np.median(single)),
        "cpu_onnx_docs_per_s_batch32": len(cpu_docs) / cpu_doc_s,
        "cpu_onnx_queries_per_s_batch32": len(queries) / cpu_q_s,
        "cpu_threads": os.cpu_count(),
    }
    (WORK / "measurements").mkdir(parents=True, exist_ok=True)
    name = "gpu_encoder_dry_run" if args.dry_run else "gpu_encoder"
    (WORK / "measurements" / f"{name}.json").write_text(json.dumps(result, indent=2))
    out = (WORK if args.dry_run else RESULTS) / f"{datetime.date.today()}-{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(result), encoding="utf-8")
    print(report(result), flush=True)
    print(f"== results: {out}", flush=True)
    return 0


def report(result: dict[str, Any]) -> str:
    """The results file: the encoder's GPU ceiling next to the same machine's CPU."""
    env = result["env"]
    best_doc = max(result["documents"], key=lambda r: r["docs_per_s"])
    best_query = max(result["queries_by_batch"], key=lambda r: r["queries_per_s"])
    lines = [
        f"# Encoder ceiling without onnxruntime-gpu — {datetime.date.today()}"
        + (" (DRY RUN on CPU: not a GPU figure)" if result["dry_run"] else ""),
        "",
        f"{result['backend']}; the default model's ONNX weights (int8, dequantised) in a torch "
        f"MiniLM (`bench/minilm_forward.py`); SciFact, {result['docs']} documents and "
        f"{result['queries']} queries, at most {result['max_length']} tokens; "
        f"{env['cpus']} CPUs ({env['cpu']}), commit {env['commit']}. "
        "`python -m bench.gpu_encoder`",
        "",
        f"Parity with onnxruntime on CPU: lowest cosine {result['parity_min_cosine']:.6f}.",
        "",
        "| documents, batch | documents/s | model only |",
        "|---:|---:|---:|",
        *(f"| {r['batch']} | {r['docs_per_s']:.1f} | {r['model_docs_per_s']:.1f} |"
          for r in result["documents"]),
        "",
        "| queries, batch | queries/s |",
        "|---:|---:|",
        *(f"| {r['batch']} | {r['queries_per_s']:.1f} |" for r in result["queries_by_batch"]),
        "",
        f"Batch-1 query encoding p50: {result['query_batch1_p50_ms']:.2f} ms (tokenise, "
        "forward, copy back, pool).",
        f"Same machine, onnxruntime on CPU at batch 32 ({env['cpus']} CPUs): "
        f"{result['cpu_onnx_docs_per_s_batch32']:.0f} documents/s, "
        f"{result['cpu_onnx_queries_per_s_batch32']:.0f} queries/s; the forward above: "
        f"**{best_doc['docs_per_s'] / result['cpu_onnx_docs_per_s_batch32']:.1f}×** documents/s "
        f"(batch {best_doc['batch']}), "
        f"**{best_query['queries_per_s'] / result['cpu_onnx_queries_per_s_batch32']:.1f}×** "
        f"queries/s (batch {best_query['batch']}).",
        "",
        "This is the encoder's ceiling on this GPU, not the server's: onnxruntime here has no "
        "CUDA provider, so `hybridsearch serve --device cuda` cannot run and hybrid q/s, the "
        "c32/c1 ratio and the encoder's share of server CPU on a GPU are not measured.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
