"""A model directory's ``encoder.json``: what the ONNX file is and how to pool and prefix.

A model directory holds ``encoder.json``, the ONNX file and the ``tokenizer.json`` it names::

    {"model_id": "all-MiniLM-L6-v2-int8", "dimension": 384, "pooling": "mean",
     "normalize": true, "max_length": 256, "query_prefix": "", "document_prefix": "",
     "onnx_file": "model.onnx", "tokenizer_file": "tokenizer.json",
     "output_name": "last_hidden_state", "sha256": {"model.onnx": "…"}}
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridsearch.errors import ModelDirError

ENCODER_CONFIG_FILE = "encoder.json"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Pooling(enum.Enum):
    """How token vectors become one text vector."""

    MEAN = "mean"  # attention-masked mean (sentence-transformers models)
    CLS = "cls"  # the first token's vector (BGE, many E5-style models)


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """How to run one ONNX encoder; stored as ``encoder.json`` beside the model files."""

    model_id: str
    dimension: int
    pooling: Pooling
    normalize: bool
    max_length: int
    query_prefix: str = ""
    document_prefix: str = ""
    onnx_file: str = "model.onnx"
    tokenizer_file: str = "tokenizer.json"
    output_name: str = "last_hidden_state"
    sha256: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ModelDirError("invalid encoder config: " + "; ".join(problems))

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object stored in ``encoder.json``."""
        return {
            "model_id": self.model_id,
            "dimension": self.dimension,
            "pooling": self.pooling.value,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "onnx_file": self.onnx_file,
            "tokenizer_file": self.tokenizer_file,
            "output_name": self.output_name,
            "sha256": dict(sorted(self.sha256.items())),
        }

    @classmethod
    def from_json_dict(cls, data: Any) -> EncoderConfig:
        """Parse the JSON object of ``encoder.json``; raises `ModelDirError` naming the field."""
        if not isinstance(data, dict):
            raise ModelDirError("expected a JSON object")
        unknown = sorted(set(data) - _FIELD_TYPES.keys())
        if unknown:
            raise ModelDirError(f"unknown field(s): {', '.join(unknown)}")
        missing = sorted(name for name in _REQUIRED if name not in data)
        if missing:
            raise ModelDirError(f"missing field(s): {', '.join(missing)}")
        for name, value in data.items():
            expected = _FIELD_TYPES[name]
            # bool is an int subclass: a JSON true must not pass as a dimension.
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ModelDirError(
                    f"field {name!r} must be {_TYPE_WORDS[expected]}, got {json.dumps(value)}"
                )
        kwargs = dict(data)
        try:
            kwargs["pooling"] = Pooling(data["pooling"])
        except ValueError:
            choices = ", ".join(p.value for p in Pooling)
            raise ModelDirError(
                f"field 'pooling' must be one of {choices}, got {data['pooling']!r}"
            ) from None
        return cls(**kwargs)


_FIELD_TYPES: dict[str, type] = {
    "model_id": str,
    "dimension": int,
    "pooling": str,
    "normalize": bool,
    "max_length": int,
    "query_prefix": str,
    "document_prefix": str,
    "onnx_file": str,
    "tokenizer_file": str,
    "output_name": str,
    "sha256": dict,
}
_REQUIRED = ("model_id", "dimension", "pooling", "normalize", "max_length")
_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
}


def _problems(config: EncoderConfig) -> list[str]:
    problems = []
    if not config.model_id.strip():
        problems.append("model_id must not be empty")
    if config.dimension <= 0:
        problems.append(f"dimension must be positive, got {config.dimension}")
    if config.max_length <= 1:
        problems.append(f"max_length must be at least 2, got {config.max_length}")
    if not config.output_name:
        problems.append("output_name must not be empty")
    for name in ("onnx_file", "tokenizer_file"):
        value = getattr(config, name)
        if not _is_plain_file_name(value):
            problems.append(f"{name} must be a file name inside the model directory: {value!r}")
    for file_name, digest in config.sha256.items():
        if not _is_plain_file_name(file_name):
            problems.append(f"sha256 key must be a file name inside the directory: {file_name!r}")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            problems.append(f"sha256 of {file_name!r} must be 64 lowercase hex digits")
    return problems


def _is_plain_file_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and os.sep not in name


def load_config(model_dir: Path) -> EncoderConfig:
    """Read ``model_dir/encoder.json``; every problem is a `ModelDirError` naming the file."""
    path = Path(model_dir) / ENCODER_CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelDirError(f"{path}: not found (not a model directory?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelDirError(f"{path}: not valid JSON: {exc}") from None
    try:
        return EncoderConfig.from_json_dict(data)
    except ModelDirError as exc:
        raise ModelDirError(f"{path}: {exc}") from None


def save_config(config: EncoderConfig, model_dir: Path) -> Path:
    """Write ``model_dir/encoder.json`` atomically (temp file, fsync, rename); returns its path."""
    path = Path(model_dir) / ENCODER_CONFIG_FILE
    tmp = path.with_name(f".{ENCODER_CONFIG_FILE}.tmp")
    payload = json.dumps(config.to_json_dict(), indent=2, ensure_ascii=False) + "\n"
    with tmp.open("w", encoding="utf-8") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as src:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(model_dir: Path, config: EncoderConfig) -> None:
    """Check every file the config pins; raises `ModelDirError` naming the first mismatch."""
    for file_name, expected in sorted(config.sha256.items()):
        path = Path(model_dir) / file_name
        if not path.is_file():
            raise ModelDirError(f"{path}: missing (its sha256 is recorded in encoder.json)")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelDirError(
                f"{path}: sha256 mismatch: expected {expected}, got {actual} "
                "(file damaged or replaced)"
            )
