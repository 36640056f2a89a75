"""Disk used under updates: 10 rounds of replacing every SciFact document, with compaction.

A fresh build of SciFact (5,183 documents; vectors of 384 dimensions, as the default model's)
is the baseline; then every document is upserted again, round after round, in batches of 64
through the server's own write path (`Ingestor`: commits, published snapshots and the
background compaction policy at its defaults). After each round the index's bytes on disk
are compared with the fresh build's. Vectors come from a hash of the text, not the model:
the storage does the same work for any vector of the same size, and no encoding time is
spent (the model's cost is not what this measures).

    python -m bench.compaction [--shared-data ../shared/data] [--rounds 10]

Writes bench/results/<date>-compaction.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.common import RESULTS
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.compaction import CompactionPolicy
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document

DIMENSION = 384
BATCH = 64


class TextHashEncoder:
    """Unit vectors seeded by each text's SHA-256: the model's shape, none of its cost."""

    model_id = "text-hash-384"
    dimension = DIMENSION
    provider = "CPUExecutionProvider"

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(DIMENSION)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMENSION)

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(texts)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return self._encode(texts)


INFO = EncoderInfo(TextHashEncoder.model_id, DIMENSION, "mean", True, 256)


def run(corpus: Path, rounds: int, work: Path) -> list[tuple[int, int, int, float]]:
    """(round, bytes after it, generation, seconds) for round 0 (the fresh build) on."""
    docs = list(read_corpus(corpus))
    index = work / "index"
    encoder = TextHashEncoder()
    started = time.perf_counter()
    build_index(docs, index, encoder=encoder, encoder_info=INFO)
    rows = [(0, dir_size_bytes(index), 0, time.perf_counter() - started)]
    writer = IndexWriter(index)
    searcher = HybridSearcher(writer.committed(), encoder)
    ingestor = Ingestor(writer, searcher, CompactionPolicy())
    try:
        for round_no in range(1, rounds + 1):
            started = time.perf_counter()
            # Each round changes every text a little, so every vector row is new.
            changed = [Document(d.id, d.title, f"{d.text} r{round_no}", d.metadata) for d in docs]
            for start in range(0, len(changed), BATCH):
                ingestor.upsert(changed[start : start + BATCH])
            seconds = time.perf_counter() - started
            rows.append((round_no, dir_size_bytes(index), writer.manifest.generation, seconds))
            print(f"round {round_no}: {rows[-1][1] / rows[0][1]:.2f}x the fresh build", flush=True)
    finally:
        ingestor.close()
        searcher.close()
    return rows


def report(rows: list[tuple[int, int, int, float]], corpus: Path) -> str:
    fresh = rows[0][1]
    lines = [
        f"# Disk under updates: {len(rows) - 1} rounds of replacing every SciFact document",
        "",
        f"{datetime.date.today().isoformat()}, `python -m bench.compaction` on {corpus}: "
        f"a fresh build, then every document upserted again each round in batches of {BATCH} "
        "through `Ingestor` with the default background compaction policy (dead fraction "
        "0.3, at least 1,000 dead rows), measured as each round ends (a compaction may be "
        "running then: both generations count). Vectors: 384-d hashes of the text (the "
        "storage's work is that of any 384-d vector; no encoding time).",
        "",
        "| round | bytes on disk | x fresh build | generation | seconds |",
        "|---|---|---|---|---|",
    ]
    for round_no, size, generation, seconds in rows:
        lines.append(
            f"| {round_no} | {size:,} | {size / fresh:.2f} | {generation} | {seconds:.1f} |"
        )
    worst = max(size for _, size, _, _ in rows[1:]) / fresh
    lines += [
        "",
        f"After the last round: {rows[-1][1] / fresh:.2f}x the fresh build (target: within "
        f"1.5x). Largest at any round's end: {worst:.2f}x; a round that ends while a "
        "compaction copies has the old and the new generation on disk at once.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    corpus = args.shared_data / "scifact" / "corpus.jsonl"
    work = Path(tempfile.mkdtemp(prefix="bench-compaction-"))
    try:
        rows = run(corpus, args.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, corpus)
    out = args.out / f"{datetime.date.today().isoformat()}-compaction.md"
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
