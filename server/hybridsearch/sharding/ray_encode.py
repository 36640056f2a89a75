"""The encoding stage of the distributed build: a pool of Ray actors, each with one ONNX
encoder, adding a ``vector`` column to batches of parsed documents.

Each actor loads the model once (the model directory must exist at the same path on every
node: the project's image has it) and encodes with the encoder the single-machine build uses,
so the vectors agree with it up to the float noise of a different batching. Rows that failed
to parse get a zero vector (the shard builder drops them). Documents encoded are counted on a
`ProgressCounter` actor, which the driver polls for its documents/s and ETA; each encoder actor
registers there before it returns its first batch, so the driver knows how many of the pool
actually encoded (a cluster too small for the pool starts only some of its actors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hybridsearch.sharding.records import with_vectors
from hybridsearch.storage.builder import dense_text
from hybridsearch.types import Device, Document


class ProgressCounter:
    """Documents done so far (a Ray actor: stages add, the driver reads)."""

    def __init__(self) -> None:
        self._done = 0
        self._encoders: set[str] = set()

    def add(self, count: int) -> None:
        """Count ``count`` more documents done."""
        self._done += count

    def done(self) -> int:
        """Documents done so far."""
        return self._done

    def encoder_ran(self, actor_id: str) -> None:
        """Note that the encoder actor ``actor_id`` encoded a batch."""
        self._encoders.add(actor_id)

    def encoders_ran(self) -> int:
        """How many encoder actors encoded a batch."""
        return len(self._encoders)


class DocumentEncoderStage:
    """A Ray Data ``map_batches`` callable class: one encoder per actor of the pool."""

    def __init__(
        self,
        *,
        model_dir: str,
        device: str,
        max_length: int | None,
        batch_size: int,
        threads: int,
        progress: Any,
    ) -> None:
        from hybridsearch.engine.loader import load_query_encoder  # noqa: PLC0415

        self._encoder = load_query_encoder(
            Path(model_dir),
            Device(device),
            max_length=max_length,
            batch_size=batch_size,
            intra_op_threads=threads,
        )
        self._batch_size = batch_size
        self._progress = progress
        self._registered = False

    def __call__(self, table: pa.Table) -> pa.Table:
        """``table`` with each document's vector (title and text, as `build_index` encodes)."""
        good = [i for i, e in enumerate(table.column("error").to_pylist()) if not e]
        rows = table.select(["title", "text"]).to_pylist()
        texts = [dense_text(Document("", rows[i]["title"], rows[i]["text"])) for i in good]
        vectors = np.zeros((table.num_rows, self._encoder.dimension), dtype=np.float32)
        if texts:
            vectors[good] = self._encoder.encode_documents(texts, batch_size=self._batch_size)
        self._progress.add.remote(table.num_rows)
        if not self._registered:  # before the batch is returned: the driver counts this actor
            import ray  # noqa: PLC0415 (this runs in a Ray actor)

            ray.get(self._progress.encoder_ran.remote(ray.get_runtime_context().get_actor_id()))
            self._registered = True
        return with_vectors(table, vectors)
