"""Every way a server loads an index refuses one whose BM25 side (``sparse/``) was lost,
naming the path, and creates nothing in its place: ``serve --index`` (writable or
``--read-only``), a shard of a sharded collection, and a collection of a data directory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.engine.data_dir import open_data_dir
from hybridsearch.engine.loader import load_index
from hybridsearch.errors import IndexFormatError
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.layout import shard_dir_name
from hybridsearch.storage.manifest import SPARSE_DIR, load_manifest
from hybridsearch.types import Document

DOCS = [Document(f"doc-{i}", "", f"alpha word{i}") for i in range(20)]
READ_ONLY = pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])


def refused(settings: ServerSettings, sparse: Path) -> None:
    """Loading ``settings`` fails naming ``sparse``, and leaves no ``sparse`` behind."""
    with pytest.raises(IndexFormatError, match=f"^no BM25 index at {re.escape(str(sparse))} "):
        load_index(settings).close()
    assert not sparse.exists()


@READ_ONLY
def test_serve_index_refuses_an_index_without_its_sparse_dir(
    tiny_sparse_index: Path, tmp_path: Path, read_only: bool
) -> None:
    copy = tmp_path / "partial-copy"
    shutil.copytree(tiny_sparse_index, copy)
    shutil.rmtree(copy / SPARSE_DIR)
    refused(ServerSettings(index=copy, read_only=read_only), copy / SPARSE_DIR)


@READ_ONLY
def test_a_sharded_collection_with_a_shard_without_its_sparse_dir_is_refused(
    tmp_path: Path, read_only: bool
) -> None:
    path = tmp_path / "sharded"
    build_sharded(DOCS, path, 3, encoder=None, encoder_info=None)
    sparse = path / shard_dir_name(1) / SPARSE_DIR
    shutil.rmtree(sparse)
    refused(ServerSettings(index=path, read_only=read_only), sparse)


@READ_ONLY
def test_a_data_dir_collection_without_its_sparse_dir_is_refused(
    tmp_path: Path, read_only: bool
) -> None:
    data_dir = tmp_path / "data"
    registry = open_data_dir(data_dir, ServerSettings())
    try:
        registry.create("docs", model="")
        with registry.use("docs") as served:
            served.ingestor().upsert(DOCS)
    finally:
        registry.close()
    collection = data_dir / "collections" / "docs"
    sparse = load_manifest(collection).data_path(collection) / SPARSE_DIR
    shutil.rmtree(sparse)
    with pytest.raises(IndexFormatError, match=f"^no BM25 index at {re.escape(str(sparse))} "):
        open_data_dir(data_dir, ServerSettings(read_only=read_only)).close()
    assert not sparse.exists()
