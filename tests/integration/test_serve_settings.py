"""`hybridsearch serve` refuses an invalid setting before it binds, forks or loads anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_a_bad_flag_stops_serve_with_its_flag_and_env(tmp_path: Path) -> None:
    done = run_cli("serve", "--alpha", "2", "--index", str(tmp_path), "--port", "0", check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --alpha (env HYBRIDSEARCH_ALPHA): must be a finite number in [0, 1] (got 2.0)"
    )
    assert "listening" not in done.stdout


def test_a_bad_env_variable_stops_serve_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDSEARCH_SEARCH_THREADS", "0")
    done = run_cli("serve", "--index", str(tmp_path), "--port", "0", "--workers", "2", check=False)
    assert done.returncode == 2
    assert "--search-threads (env HYBRIDSEARCH_SEARCH_THREADS): must be >= 1 (got 0)" in done.stderr
    assert "listening" not in done.stdout


@pytest.mark.parametrize("content", [None, "{not json"])
def test_a_missing_or_corrupted_adaptive_model_stops_serve_naming_it(
    tmp_path: Path, content: str | None
) -> None:
    model = tmp_path / "adaptive.json"
    if content is not None:
        model.write_text(content, encoding="utf-8")
    done = run_cli(
        "serve",
        "--adaptive-model",
        str(model),
        "--index",
        str(tmp_path),
        "--port",
        "0",
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --adaptive-model (env HYBRIDSEARCH_ADAPTIVE_MODEL): "
        f"adaptive fusion model {model}: "
    )
    assert ("cannot read it" if content is None else "not valid JSON") in done.stderr
    assert "listening" not in done.stdout
