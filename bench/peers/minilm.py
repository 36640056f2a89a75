"""The served query encoder, rebuilt from onnxruntime + tokenizers for the peers' own venvs.

Same model directory (encoder.json, int8 ONNX, tokenizer), same mean pooling and L2
normalisation as hybridsearch's OnnxEncoder, so every system ranks with the same vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


class MiniLM:
    """``encode(text)`` → unit float32 vector; ``encode_many(texts)`` → matrix."""

    def __init__(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "encoder.json").read_text(encoding="utf-8"))
        self.prefix = config.get("query_prefix", "")
        self.tokenizer = Tokenizer.from_file(str(model_dir / config["tokenizer_file"]))
        self.tokenizer.enable_truncation(int(config["max_length"]))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        # As `hybridsearch serve` runs it: idle pool threads sleep instead of spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(model_dir / config["onnx_file"]), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = config["output_name"]

    def encode_many(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([self.prefix + t for t in texts])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (hidden,) = self.session.run([self.output], {n: feeds[n] for n in self.inputs})
        mask = feeds["attention_mask"].astype(np.float32)[:, :, None]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    def encode(self, text: str) -> np.ndarray:
        return self.encode_many([text])[0]


def timed_percentiles(latencies_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    ms = np.array(latencies_s) * 1000
    return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def write_run(path: Path, run: dict[str, list[tuple[str, float]]], tag: str) -> None:
    """A TREC run file (qid Q0 docid rank score tag)."""
    with path.open("w", encoding="utf-8") as out:
        for qid, hits in run.items():
            for rank, (docid, score) in enumerate(hits, 1):
                out.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")
