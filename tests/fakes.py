"""Fakes that slot in through the engine's Protocols: an encoder with no model, and a small
index built with it (unit tests of the engine, ingest and storage need no ONNX model)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.types import Document

DIM = 8


class HashEncoder:
    """A deterministic fake `Encoder`: a unit vector seeded by the text's SHA-256.

    ``calls`` counts `encode_queries` runs (one per batch), so tests can see batching.
    """

    model_id = "fake-hash"
    dimension = DIM
    provider = "CPUExecutionProvider"

    def __init__(self) -> None:
        self.calls = 0

    @staticmethod
    def vector(text: str) -> NDArray[np.float32]:
        """The unit vector of one text."""
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        row = np.random.default_rng(seed).normal(size=DIM)
        return np.asarray(row / np.linalg.norm(row), dtype=np.float32)

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.asarray([self.vector(t) for t in texts], dtype=np.float32).reshape(-1, DIM)

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.calls += 1
        return self._encode(texts)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> NDArray[np.float32]:
        return self._encode(texts)


HASH_ENCODER_INFO = EncoderInfo(HashEncoder.model_id, DIM, "mean", True, 128)


def build_fake_index(
    path: Path,
    docs: Sequence[Document],
    *,
    dense: bool = True,
    schema: CollectionSchema | None = None,
) -> Path:
    """An index of ``docs`` at ``path``, with `HashEncoder` vectors unless ``dense`` is False,
    declaring the metadata fields of ``schema`` (none by default)."""
    build_index(
        list(docs),
        path,
        encoder=HashEncoder() if dense else None,
        encoder_info=HASH_ENCODER_INFO if dense else None,
        schema=schema,
    )
    return path
