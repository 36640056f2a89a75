"""`python -m tests.integration.gated_encoder_server SERVE-FLAGS`: the real server and engine
(micro-batcher, dense arm, fusion) over a small index, with a query encoder the test drives.

Documents are encoded at start-up without a gate. Each query encoder run then prints
``encoding <text>|<text>...`` on stdout (after the ``listening on`` line) and waits for a line
on stdin before it returns, so a test sees which queries reached the encoder, batched how, and
holds the encoder busy for as long as it needs, without sleeping.

Vectors come from a hash of the text, so a query equal to a document's text has that document
as its nearest neighbour (cosine 1).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.api.server import serve
from hybridsearch.config import ServerSettings, add_settings_arguments, settings_from
from hybridsearch.engine.loader import batching_settings
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.types import Document

DIM = 16
TEXTS = (
    "laminar flow over a flat plate",
    "shock wave boundary layer interaction",
    "heat transfer in hypersonic flight",
    "flutter of thin swept wings",
    "turbulent mixing in jet exhaust",
    "buckling of cylindrical shells",
    "drag of slender bodies at low speed",
    "vortex shedding behind a cylinder",
)
DOCUMENTS = [Document(f"d{i}", "", text) for i, text in enumerate(TEXTS)]


def hash_vectors(texts: Sequence[str]) -> NDArray[np.float32]:
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        rows.append(np.random.default_rng(seed).normal(size=DIM))
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIM)
    norms: NDArray[np.float32] = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / norms


class GatedEncoder:
    """Hash vectors; every query run reports its texts and waits for the test's go-ahead."""

    model_id = "gated-hash"
    dimension = DIM
    provider = "CPUExecutionProvider"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        with self._lock:  # one run at a time, like one ONNX session's batch
            print("encoding " + "|".join(texts), flush=True)
            if not sys.stdin.readline():
                raise RuntimeError("the test closed the gate")
        return hash_vectors(texts)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return hash_vectors(texts)


def main() -> int:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    settings = settings_from(parser.parse_args())
    path = Path(tempfile.mkdtemp(prefix="gated-index-")) / "index"
    build_index(
        DOCUMENTS,
        path,
        encoder=GatedEncoder(),
        encoder_info=EncoderInfo("gated-hash", DIM, "mean", True, 128),
    )

    def factory(current: ServerSettings) -> HybridSearcher:
        return HybridSearcher(
            open_index(path),
            GatedEncoder(),
            batching=batching_settings(current),
            arm_threads=current.search_threads,
        )

    return asyncio.run(serve(settings, factory))


if __name__ == "__main__":
    sys.exit(main())
