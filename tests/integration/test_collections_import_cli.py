"""`hybridsearch collections import`: an index built offline, imported by the CLI into a data
directory, is served by `serve --data-dir` under its name; a running server's directory and a
taken name are refused with a message."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import run_cli, start_server


def test_import_then_serve_then_search(tiny_sparse_index: Path, tmp_path: Path) -> None:
    # A copy: the session's `sparse_server` may hold the shared index open for writing, and an
    # import refuses an index being written (as it should).
    tiny_sparse_index = Path(shutil.copytree(tiny_sparse_index, tmp_path / "tiny-sparse"))
    data = tmp_path / "data"
    done = run_cli(
        "collections", "import", "tiny", "--from-index", str(tiny_sparse_index),
        "--data-dir", str(data),
    )  # fmt: skip
    assert "as 'tiny'" in done.stdout and "BM25 only" in done.stdout
    again = run_cli(
        "collections", "import", "tiny", "--from-index", str(tiny_sparse_index),
        "--data-dir", str(data), check=False,
    )  # fmt: skip
    assert again.returncode == 1 and "already a collection or alias" in again.stderr
    server = start_server("--data-dir", str(data))
    try:
        server.wait_serving(timeout=60)
        locked = run_cli(
            "collections", "import", "other", "--from-index", str(tiny_sparse_index),
            "--data-dir", str(data), check=False,
        )  # fmt: skip
        assert locked.returncode == 1 and "being written by another process" in locked.stderr
        listing = run_cli("collections", "list", "--server", server.address)
        assert listing.stdout.splitlines()[1].startswith("tiny *")  # the default: the first
        hits = run_cli(
            "search", "flow", "--collection", "tiny", "--mode", "sparse", "--top-k", "3",
            "--server", server.address, "--json",
        )  # fmt: skip
        assert '"hits"' in hits.stdout
    finally:
        assert server.stop(timeout=30) == 0
