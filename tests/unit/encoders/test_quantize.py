"""`models quantize`: an int8 query model close to the full one; documents keep the full model."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from hybridsearch.encoders.check import check_model
from hybridsearch.encoders.config import load_config, save_config
from hybridsearch.encoders.onnx_encoder import load_encoder
from hybridsearch.encoders.quantize import MIN_COSINE, int8_model_path, quantize_model
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.errors import ModelDirError
from hybridsearch.types import Device

pytest.importorskip(
    "onnx", reason="quantizing needs the quantize extra (pip install -e .[quantize])"
)

QUERIES = ["laminar boundary layer on a flat plate", "heat transfer at hypersonic speed"]
DOCUMENTS = ["The flutter of a swept wing at transonic speed.", "Shock waves in a nozzle."]


@pytest.fixture(scope="module")
def quantized_dir(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("q") / "minilm"
    shutil.copytree(default_model_dir, target)
    report = quantize_model(target)
    assert report.path == target / "model_int8.onnx" and report.path.is_file()
    assert report.queries > 100
    assert MIN_COSINE <= report.min_cosine <= report.mean_cosine < 1.0
    return target


def test_the_int8_file_is_pinned_and_checked(quantized_dir: Path) -> None:
    config = load_config(quantized_dir)
    assert "model_int8.onnx" in config.sha256
    assert check_model(quantized_dir, device="cpu").ok
    # A damaged int8 file is caught like any pinned file.
    damaged = quantized_dir.parent / "damaged"
    shutil.copytree(quantized_dir, damaged)
    with int8_model_path(damaged / config.onnx_file).open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\0" * 16)
    assert not check_model(damaged, device="cpu").ok


def test_queries_change_a_little_documents_not_at_all(quantized_dir: Path) -> None:
    full = load_encoder(quantized_dir, device="cpu")
    fast = load_query_encoder(quantized_dir, Device.CPU, int8_queries=True)
    full_q, fast_q = full.encode_queries(QUERIES), fast.encode_queries(QUERIES)
    cosines = np.sum(full_q * fast_q, axis=1)
    assert np.all(cosines > MIN_COSINE) and not np.array_equal(full_q, fast_q)
    np.testing.assert_array_equal(
        fast.encode_documents(DOCUMENTS), full.encode_documents(DOCUMENTS)
    )


def test_serving_int8_without_the_file_says_how_to_make_it(default_model_dir: Path) -> None:
    with pytest.raises(ModelDirError, match="models quantize"):
        load_query_encoder(default_model_dir, Device.CPU, int8_queries=True)


def damaged_copy(model_dir: Path, target: Path) -> Path:
    """A copy of ``model_dir`` whose ONNX file is 1,000 random bytes."""
    shutil.copytree(model_dir, target)
    (target / load_config(target).onnx_file).write_bytes(np.random.default_rng(7).bytes(1000))
    return target


def test_a_damaged_pinned_model_is_refused_by_its_sha256(
    default_model_dir: Path, tmp_path: Path
) -> None:
    damaged = damaged_copy(default_model_dir, tmp_path / "damaged")
    with pytest.raises(ModelDirError, match=r"model\.onnx: sha256 mismatch: .*file damaged"):
        quantize_model(damaged)
    assert sorted(p.name for p in damaged.iterdir()) == sorted(
        p.name for p in default_model_dir.iterdir()
    )


def test_an_unloadable_unpinned_model_is_one_error(default_model_dir: Path, tmp_path: Path) -> None:
    damaged = damaged_copy(default_model_dir, tmp_path / "unpinned")
    config = load_config(damaged)
    save_config(dataclasses.replace(config, sha256={}), damaged)
    with pytest.raises(ModelDirError, match=r"model\.onnx: onnxruntime cannot load the model"):
        quantize_model(damaged)
    assert not int8_model_path(damaged / config.onnx_file).exists()


def test_a_damaged_int8_file_is_replaced_not_refused(quantized_dir: Path, tmp_path: Path) -> None:
    """Only the sources must match: the int8 file is the one being rewritten."""
    again = tmp_path / "again"
    shutil.copytree(quantized_dir, again)
    int8_model_path(again / load_config(again).onnx_file).write_bytes(b"damaged")
    quantize_model(again)
    assert check_model(again, device="cpu").ok
