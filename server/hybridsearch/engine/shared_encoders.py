"""Encoders shared by collections: one loaded encoder and one dense arm per model directory.

Collections served from one data directory that use the same model share its encoder and its
micro-batcher, so concurrent searches of different collections are batched into one encoder
run (`DenseArm` groups a batch's jobs by index snapshot for the dense search itself).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hybridsearch.config import ServerSettings
from hybridsearch.engine.dense_arm import DenseArm

if TYPE_CHECKING:
    from hybridsearch.encoders.onnx_encoder import OnnxEncoder


class SharedEncoders:
    """Loads each (model directory, token limit) once; thread-safe; `close` stops the arms."""

    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._loaded: dict[tuple[Path, int], tuple[OnnxEncoder, DenseArm]] = {}

    def get(self, model_dir: Path, max_length: int) -> tuple[OnnxEncoder, DenseArm]:
        """The encoder of ``model_dir`` (at ``max_length`` tokens) and its dense arm."""
        from hybridsearch.engine.loader import (  # noqa: PLC0415 (loader imports this module)
            batching_settings,
            serving_encoder,
        )

        key = (model_dir.resolve(), max_length)
        with self._lock:  # loading under the lock: two collections never load one model twice
            if key not in self._loaded:
                encoder = serving_encoder(self._settings, model_dir, max_length)
                arm = DenseArm(
                    encoder,
                    batching_settings(self._settings),
                    threads=self._settings.search_threads,
                )
                self._loaded[key] = (encoder, arm)
            return self._loaded[key]

    def close(self) -> None:
        """Stop every dense arm's threads."""
        with self._lock:
            loaded, self._loaded = list(self._loaded.values()), {}
        for _, arm in loaded:
            arm.close()
