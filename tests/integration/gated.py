"""A query encoder the test drives, for in-process servers: it reports each run and holds it
until the test releases it, so a test sees which queries reached the encoder, batched how,
and keeps the encoder busy for as long as it needs, without sleeping.

Vectors are `tests.fakes.HashEncoder`'s, so an index built with `build_fake_index` matches:
a query equal to a document's text has that document as its nearest neighbour (cosine 1).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from tests.fakes import HashEncoder

WAIT_S = 120.0  # the most any signal may take on a loaded CI machine


class GatedEncoder(HashEncoder):
    """Hash vectors; each query run is put on `runs` and waits for `release` (or `open`)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: queue.Queue[list[str]] = queue.Queue()
        self.encoded: list[str] = []  # every query text ever encoded, in order
        self._go = threading.Semaphore(0)
        self._open = threading.Event()
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        with self._lock:  # one run at a time, like one ONNX session's batch
            self.encoded.extend(texts)
            self.runs.put(list(texts))
            if not self._open.is_set() and not self._go.acquire(timeout=WAIT_S):
                raise RuntimeError("the test never released the encoder")
            return super().encode_queries(texts)

    def next_run(self) -> list[str]:
        """Block until the encoder starts its next run; the texts it encodes."""
        return self.runs.get(timeout=WAIT_S)

    def release(self) -> None:
        """Let the current (or next) run finish."""
        self._go.release()

    def open(self) -> None:
        """Stop gating: the run held now and every later one go through."""
        self._open.set()
        self._go.release()
