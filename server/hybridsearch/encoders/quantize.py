"""``hybridsearch models quantize``: a dynamically quantised int8 copy of a model, for queries.

On CPU a MiniLM query encoding is matrix products in fp32 (the shipped ONNX stores int8
weights but dequantises them once at load). Dynamic quantisation (onnxruntime's
``quantize_dynamic``: int8 weights per output channel, activations quantised per run) runs
those products in int8: about 1.7x faster per query on AVX2 at a cosine of about 0.99 to
the full model's vectors. It is used for queries only (``serve --encoder-int8``): document
vectors stay the full model's, so an index never mixes the two.

    model.onnx ──onnxruntime, basic graph optimisation (constant folding)──▶ fp32 weights
               ──quantize_dynamic(per_channel, QInt8)──▶ model_int8.onnx (+ its sha256)

Needs the ``onnx`` package (extra ``quantize``) when it runs, not when serving.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridsearch.encoders.config import (
    EncoderConfig,
    load_config,
    save_config,
    sha256_file,
    verify_sha256,
)
from hybridsearch.errors import ModelDirError
from hybridsearch.storage.files import fsync_dir, temp_file_beside

MIN_COSINE = 0.95  # a quantised model further than this from the full one is refused
_SAMPLE_QUERIES = "cranfield-queries.jsonl.gz"  # bundled: real queries to compare on


def int8_model_path(onnx_path: Path) -> Path:
    """Where the int8 variant of a model lives: ``model.onnx`` → ``model_int8.onnx``."""
    return onnx_path.with_name(f"{onnx_path.stem}_int8{onnx_path.suffix}")


@dataclass(frozen=True, slots=True)
class QuantizeReport:
    """What ``quantize_model`` wrote and how close its query vectors are to the full model's."""

    path: Path
    queries: int
    min_cosine: float
    mean_cosine: float
    seconds: float


def quantize_model(model_dir: Path) -> QuantizeReport:
    """Write ``model_int8.onnx`` beside the model's ONNX file and pin its sha256.

    The directory's pinned files must match their sha256 first (as `models check` verifies
    them), except an earlier int8 file, which is replaced. The new file is compared with the
    full model on the bundled sample queries; one whose vectors fall below `MIN_COSINE` is
    not kept. Raises `ModelDirError`.
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    config = load_config(model_dir)
    source = model_dir / config.onnx_file
    if not source.is_file():
        raise ModelDirError(f"{source}: ONNX file not found")
    target = int8_model_path(source)
    _verify_sources(model_dir, config, replaced=target.name)
    quantize_dynamic, quant_type = _quantizer()
    fd, tmp_name = temp_file_beside(target)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory() as work:
            folded = Path(work) / "folded.onnx"
            _fold_constants(source, folded)
            with _warnings_off():  # quantize_dynamic logs a pre-processing hint every run
                quantize_dynamic(
                    str(folded), str(tmp), weight_type=quant_type.QInt8, per_channel=True
                )
        cosines = _compare(model_dir, tmp)
        if float(cosines.min()) < MIN_COSINE:
            raise ModelDirError(
                f"{source}: the quantised model is too far from the full one "
                f"(min cosine {cosines.min():.4f} < {MIN_COSINE}); not kept"
            )
        os.replace(tmp, target)
        fsync_dir(model_dir)
    finally:
        tmp.unlink(missing_ok=True)
    pinned = {**config.sha256, target.name: sha256_file(target)}
    save_config(dataclasses.replace(config, sha256=pinned), model_dir)
    return QuantizeReport(
        path=target,
        queries=len(cosines),
        min_cosine=float(cosines.min()),
        mean_cosine=float(cosines.mean()),
        seconds=time.perf_counter() - started,
    )


def _verify_sources(model_dir: Path, config: EncoderConfig, *, replaced: str) -> None:
    """`verify_sha256` for every pinned file but ``replaced`` (the one being rewritten):
    a damaged or replaced model is refused before onnxruntime reads it."""
    sources = {name: digest for name, digest in config.sha256.items() if name != replaced}
    verify_sha256(model_dir, dataclasses.replace(config, sha256=sources))


def _quantizer() -> tuple[Any, Any]:  # onnxruntime.quantization is untyped
    try:
        import onnx  # noqa: F401, PLC0415  (onnxruntime.quantization needs it)
        from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415
    except ImportError:
        raise ModelDirError(
            "quantizing needs the onnx package: pip install 'hybridsearch[quantize]'"
        ) from None
    return quantize_dynamic, QuantType


def _fold_constants(source: Path, out: Path) -> None:
    """Save the model after onnxruntime's basic optimisations: the int8 weights' dequantise
    nodes folded into fp32 initializers, which ``quantize_dynamic`` then re-quantises."""
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
        raise ModelDirError(f"{source}: onnxruntime cannot load the model: {exc}") from None


@contextmanager
def _warnings_off() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _compare(model_dir: Path, candidate: Path) -> NDArray[np.float32]:
    """Cosine of each sample query's vector from ``candidate`` to the full model's."""
    from hybridsearch.encoders.onnx_encoder import load_encoder  # noqa: PLC0415

    queries = sample_queries()
    full = load_encoder(model_dir, device="cpu")
    quantised = load_encoder(model_dir, device="cpu", query_model=candidate)
    cosines: NDArray[np.float32] = np.sum(
        full.encode_queries(queries) * quantised.encode_queries(queries), axis=1
    )
    return cosines


def sample_queries() -> list[str]:
    """The bundled Cranfield queries (225 real queries)."""
    path = resources.files("hybridsearch") / "data" / _SAMPLE_QUERIES
    with gzip.open(str(path), "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]
