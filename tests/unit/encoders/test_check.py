"""check_model: passes on a good directory, names the failure on a bad one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hybridsearch.encoders.check import check_model
from hybridsearch.encoders.config import ENCODER_CONFIG_FILE


def test_good_directory_passes(default_model_dir: Path) -> None:
    report = check_model(default_model_dir, device="cpu")
    assert report.ok, report.lines()
    assert [c.name for c in report.checks] == [
        "config",
        "files",
        "sha256",
        "load",
        "shape",
        "finite",
        "unit norm",
        "semantics",
    ]
    assert report.provider == "CPUExecutionProvider"
    assert report.lines()[-1].endswith("OK")


def _copy(default_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(default_model_dir, target)
    return target


def _failed(report) -> list[str]:
    return [c.name for c in report.checks if not c.ok]


def test_corrupted_onnx_fails_sha256(default_model_dir: Path, tmp_path: Path) -> None:
    target = _copy(default_model_dir, tmp_path)
    data = bytearray((target / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "model.onnx").write_bytes(bytes(data))
    report = check_model(target, device="cpu")
    assert not report.ok
    assert _failed(report) == ["sha256"]
    assert report.lines()[-1].endswith("FAILED")


def test_truncated_onnx_without_digest_fails_to_load(
    default_model_dir: Path, tmp_path: Path
) -> None:
    target = _copy(default_model_dir, tmp_path)
    config = json.loads((target / ENCODER_CONFIG_FILE).read_text())
    config["sha256"] = {}
    (target / ENCODER_CONFIG_FILE).write_text(json.dumps(config))
    (target / "model.onnx").write_bytes((target / "model.onnx").read_bytes()[:1000])
    report = check_model(target, device="cpu")
    assert _failed(report) == ["load"]


def test_missing_files_and_config(default_model_dir: Path, tmp_path: Path) -> None:
    target = _copy(default_model_dir, tmp_path)
    (target / "tokenizer.json").unlink()
    assert _failed(check_model(target, device="cpu")) == ["files"]
    assert _failed(check_model(tmp_path / "nowhere", device="cpu")) == ["config"]


def test_wrong_dimension_fails(default_model_dir: Path, tmp_path: Path) -> None:
    target = _copy(default_model_dir, tmp_path)
    config = json.loads((target / ENCODER_CONFIG_FILE).read_text())
    config["dimension"] = 768
    (target / ENCODER_CONFIG_FILE).write_text(json.dumps(config))
    assert _failed(check_model(target, device="cpu")) == ["load"]
