"""Without the extra or the jar, the Lucene arm says what to install (no JVM started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridsearch.sparse.lucene_jvm import lucene_problem


def test_a_missing_jar_is_named_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDSEARCH_ANSERINI_JAR", str(tmp_path / "absent.jar"))
    problem = lucene_problem()
    assert problem is not None
    assert "install_anserini_jar.py" in problem
    # Without the extra it names the missing module first, else the missing jar.
    assert "absent.jar" in problem or "not installed" in problem
