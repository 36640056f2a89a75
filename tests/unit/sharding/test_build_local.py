"""The in-process sharded build: every document in exactly its hash's shard, each shard a
complete index, and nothing visible at the target when the build fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridsearch.errors import BuildError
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.layout import load_shard_manifest, shard_of
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Document
from tests.fakes import HASH_ENCODER_INFO, HashEncoder

DOCS = [Document(f"d{i}", "", f"word{i % 7} common text {i}") for i in range(60)]


def test_each_document_lands_in_its_shard(tmp_path: Path) -> None:
    out = tmp_path / "sharded"
    summary = build_sharded(DOCS, out, 3, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO)
    assert summary.documents == 60
    manifest = load_shard_manifest(out)
    assert (manifest.shard_count, manifest.encoder) == (3, HASH_ENCODER_INFO)
    seen: list[str] = []
    for number, path in enumerate(manifest.shard_paths(out)):
        index = open_index(path)  # a complete index directory of today's format
        ids = list(index.ids)
        assert all(shard_of(i, 3) == number for i in ids)
        assert index.vectors is not None and index.vectors.shape[0] == len(ids)
        seen += ids
    assert sorted(seen) == sorted(d.id for d in DOCS)


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "sharded"

    def docs() -> list[Document]:
        raise RuntimeError("corpus read failed")

    with pytest.raises(RuntimeError):
        build_sharded((d for d in docs()), out, 2, encoder=None)
    assert list(tmp_path.iterdir()) == []
    build_sharded(DOCS, out, 2, encoder=None)
    with pytest.raises(BuildError, match="already exists"):
        build_sharded(DOCS, out, 2, encoder=None)
