"""`hybridsearch serve --index` of an index whose BM25 side was lost (a partial copy) stops
with one error naming the path, instead of serving empty BM25 answers; it creates nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from hybridsearch.storage.manifest import SPARSE_DIR
from tests.conftest import run_cli


def test_serve_stops_on_an_index_without_its_sparse_dir(
    tiny_sparse_index: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "partial-copy"
    shutil.copytree(tiny_sparse_index, copy)
    shutil.rmtree(copy / SPARSE_DIR)
    done = run_cli("serve", "--index", str(copy), "--port", "0", check=False, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        f"error: cannot load the index: no BM25 index at {copy / SPARSE_DIR} (its tantivy "
        "meta.json is missing): the index is incomplete or damaged; rebuild it or copy it again"
    )
    assert not (copy / SPARSE_DIR).exists()
