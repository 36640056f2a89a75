"""encoder.json: round trip and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridsearch.encoders.config import (
    ENCODER_CONFIG_FILE,
    EncoderConfig,
    ModelDirError,
    Pooling,
    load_config,
    save_config,
)

_FULL = EncoderConfig(
    model_id="bge-small-en-v1.5",
    dimension=384,
    pooling=Pooling.CLS,
    normalize=True,
    max_length=512,
    query_prefix="Represent this sentence for searching relevant passages: ",
    document_prefix="",
    sha256={"model.onnx": "a" * 64},
)


def test_round_trip(tmp_path: Path) -> None:
    path = save_config(_FULL, tmp_path)
    assert path == tmp_path / ENCODER_CONFIG_FILE
    assert load_config(tmp_path) == _FULL
    assert json.loads(path.read_text())["pooling"] == "cls"


def test_defaults_fill_optional_fields(tmp_path: Path) -> None:
    minimal = {"model_id": "m", "dimension": 8, "pooling": "mean", "normalize": False}
    (tmp_path / ENCODER_CONFIG_FILE).write_text(json.dumps({**minimal, "max_length": 16}))
    config = load_config(tmp_path)
    assert (config.onnx_file, config.tokenizer_file, config.output_name) == (
        "model.onnx",
        "tokenizer.json",
        "last_hidden_state",
    )
    assert (config.query_prefix, config.document_prefix, dict(config.sha256)) == ("", "", {})


def _write(tmp_path: Path, **changes: object) -> Path:
    data = _FULL.to_json_dict()
    data.update(changes)
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
    (tmp_path / ENCODER_CONFIG_FILE).write_text(json.dumps(data))
    return tmp_path


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pooling": "max"}, "'pooling' must be one of mean, cls"),
        ({"dimension": "384"}, "'dimension' must be an integer"),
        ({"dimension": True}, "'dimension' must be an integer"),
        ({"dimension": 0}, "dimension must be positive"),
        ({"normalize": 1}, "'normalize' must be true or false"),
        ({"max_length": 1}, "max_length must be at least 2"),
        ({"onnx_file": "../model.onnx"}, "onnx_file must be a file name"),
        ({"sha256": {"model.onnx": "xyz"}}, "64 lowercase hex"),
        ({"model_id": _DROP}, "missing field\\(s\\): model_id"),
        ({"colour": "blue"}, "unknown field\\(s\\): colour"),
    ],
)
def test_invalid_fields_are_named(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    _write(tmp_path, **changes)
    with pytest.raises(ModelDirError, match=message) as info:
        load_config(tmp_path)
    assert str(tmp_path / ENCODER_CONFIG_FILE) in str(info.value)


def test_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="not found"):
        load_config(tmp_path)
    (tmp_path / ENCODER_CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelDirError, match="not valid JSON"):
        load_config(tmp_path)
    (tmp_path / ENCODER_CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ModelDirError, match="expected a JSON object"):
        load_config(tmp_path)


def test_constructor_validates() -> None:
    with pytest.raises(ModelDirError, match="dimension must be positive"):
        EncoderConfig(
            model_id="m", dimension=-1, pooling=Pooling.MEAN, normalize=True, max_length=8
        )
