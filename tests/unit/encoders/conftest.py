"""The default model loaded as an encoder (its directory: tests/unit/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridsearch.encoders.onnx_encoder import OnnxEncoder, load_encoder


@pytest.fixture(scope="session")
def encoder(default_model_dir: Path) -> OnnxEncoder:
    return load_encoder(default_model_dir, device="cpu")
