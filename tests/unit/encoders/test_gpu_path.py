"""The CUDA path is chosen only when onnxruntime offers CUDA; I/O binding and fp16 follow it.

No GPU is needed: the provider list onnxruntime reports is replaced in each test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnxruntime as ort
import pytest

from hybridsearch.encoders import onnx_encoder
from hybridsearch.encoders.onnx_encoder import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    Device,
    fp16_model_path,
    load_encoder,
    uses_io_binding,
)
from hybridsearch.errors import ModelDirError


def offer(monkeypatch: pytest.MonkeyPatch, *providers: str) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(providers))


def test_auto_picks_cuda_only_when_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    offer(monkeypatch, CPU_PROVIDER)
    assert onnx_encoder._providers_for(Device.AUTO) == [CPU_PROVIDER]
    offer(monkeypatch, CUDA_PROVIDER, CPU_PROVIDER)
    assert onnx_encoder._providers_for(Device.AUTO) == [CUDA_PROVIDER, CPU_PROVIDER]
    assert onnx_encoder._providers_for(Device.CUDA) == [CUDA_PROVIDER, CPU_PROVIDER]


def test_cpu_device_never_uses_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    offer(monkeypatch, CUDA_PROVIDER, CPU_PROVIDER)
    assert onnx_encoder._providers_for(Device.CPU) == [CPU_PROVIDER]


def test_cuda_device_without_cuda_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    offer(monkeypatch, CPU_PROVIDER)
    with pytest.raises(ModelDirError, match="CUDAExecutionProvider"):
        onnx_encoder._providers_for(Device.CUDA)


def test_io_binding_only_on_cuda() -> None:
    assert uses_io_binding(CUDA_PROVIDER)
    assert not uses_io_binding(CPU_PROVIDER)


def test_cpu_encoder_does_not_bind(default_model_dir: Path) -> None:
    encoder = load_encoder(default_model_dir, device="cpu", intra_op_threads=1)
    assert encoder.provider == CPU_PROVIDER
    assert not encoder._io_binding


def test_fp16_model_needs_cuda_and_the_file(default_model_dir: Path, tmp_path: Path) -> None:
    assert fp16_model_path(Path("m/model.onnx")) == Path("m/model_fp16.onnx")
    with pytest.raises(ModelDirError, match="--device cuda"):
        onnx_encoder.OnnxEncoder(
            default_model_dir, _config(default_model_dir), device="cpu", fp16=True
        )
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir, copy)
    with pytest.raises(ModelDirError, match="no fp16 model"):
        onnx_encoder._fp16_model_path(copy / "model.onnx", Device.CUDA)


def _config(model_dir: Path) -> onnx_encoder.EncoderConfig:
    from hybridsearch.encoders.config import load_config

    return load_config(model_dir)
