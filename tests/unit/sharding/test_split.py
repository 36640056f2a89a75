"""Splitting an index into shards (`hybridsearch shards split`): only live documents, each in
its hash's shard with its stored fields and its stored vector bit for bit; the same shards a
sharded build of the same documents writes; nothing at the target when it fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybridsearch.cli.app import main
from hybridsearch.errors import BuildError
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.layout import load_shard_manifest, shard_of
from hybridsearch.sharding.split import split_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import Document
from tests.fakes import HASH_ENCODER_INFO, HashEncoder, build_fake_index

SCHEMA = CollectionSchema((MetadataField("topic", MetadataType.KEYWORD),))
DOCS = [
    Document(f"d{i}", f"title {i}", f"word{i % 7} common text {i}", {"topic": f"t{i % 3}"})
    for i in range(50)
]


def _vectors_by_id(path: Path) -> dict[str, np.ndarray]:
    index = open_index(path)
    assert index.vectors is not None
    return {
        doc_id: np.asarray(index.vectors[o])
        for o, doc_id in enumerate(index.ids)
        if index.is_live(o)
    }


def test_split_keeps_live_documents_and_their_vectors(tmp_path: Path) -> None:
    source = build_fake_index(tmp_path / "source", DOCS, schema=SCHEMA)
    writer = IndexWriter(source)  # a dead row and a replaced one must not be split
    writer.delete(["d3"])
    replaced = Document("d4", "new", "replaced text", {"topic": "t9"})
    writer.upsert([replaced], HashEncoder().encode_documents(["new replaced text"]))
    writer.close()
    source_vectors = _vectors_by_id(source)

    summary = split_index(source, tmp_path / "sharded", 3)

    assert summary.documents == 49
    manifest = load_shard_manifest(tmp_path / "sharded")
    assert (manifest.shard_count, manifest.encoder, manifest.schema) == (
        3,
        HASH_ENCODER_INFO,
        SCHEMA,
    )
    seen: dict[str, np.ndarray] = {}
    for number, path in enumerate(manifest.shard_paths(tmp_path / "sharded")):
        index = open_index(path)
        assert all(shard_of(doc_id, 3) == number for doc_id in index.ids)
        seen.update(_vectors_by_id(path))
        stored = index.sparse.fetch(range(len(index.ids)))
        for doc in stored.values():
            if doc.id == "d4":
                assert (doc.title, doc.text, dict(doc.metadata)) == (
                    "new",
                    "replaced text",
                    {"topic": "t9"},
                )
    assert seen.keys() == source_vectors.keys() and "d3" not in seen
    for doc_id, vector in seen.items():
        assert np.array_equal(vector, source_vectors[doc_id])


def test_split_writes_the_shards_a_sharded_build_writes(tmp_path: Path) -> None:
    source = build_fake_index(tmp_path / "source", DOCS, schema=SCHEMA)
    split_index(source, tmp_path / "split", 4)
    build_sharded(
        DOCS,
        tmp_path / "built",
        4,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
        schema=SCHEMA,
    )
    split, built = load_shard_manifest(tmp_path / "split"), load_shard_manifest(tmp_path / "built")
    for a, b in zip(
        split.shard_paths(tmp_path / "split"), built.shard_paths(tmp_path / "built"), strict=True
    ):
        assert open_index(a).ids == open_index(b).ids
        va, vb = _vectors_by_id(a), _vectors_by_id(b)
        assert all(np.array_equal(va[k], vb[k]) for k in va)


def test_split_command_and_its_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = build_fake_index(tmp_path / "source", DOCS, schema=SCHEMA)
    out = tmp_path / "sharded"
    argv = ["shards", "split", "--from-index", str(source), "--shards", "2", "--out", str(out)]
    assert main(argv) == 0
    assert "into 2 shards" in capsys.readouterr().out
    assert main(argv) == 2  # exists: needs --force
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert main([*argv[:-3], "0", "--out", str(tmp_path / "zero")]) == 2
    assert not (tmp_path / "zero").exists()
    with pytest.raises(BuildError):
        split_index(source, out, 2)
    assert not list(tmp_path.glob(".sharded.building-shards-*"))


def test_split_keeps_the_hnsw_parameters_of_the_source(tmp_path: Path) -> None:
    """The shards' graphs have the source's M and efConstruction (the defaults are 32/200),
    read from its manifest or, for a manifest that predates recording them, its graph file."""
    pytest.importorskip("faiss", reason="HNSW needs the extra ann")
    import json

    from hybridsearch.dense.hnsw import HNSW_FILE, HnswParams, graph_params
    from hybridsearch.dense.select import DenseIndexKind
    from hybridsearch.storage.builder import build_index

    source = tmp_path / "source"
    params = HnswParams(m=8, ef_construction=40)
    build_index(DOCS, source, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO,
                dense_index=DenseIndexKind.HNSW, hnsw=params)  # fmt: skip
    assert (
        open_index(source).manifest.hnsw_m,
        open_index(source).manifest.hnsw_ef_construction,
    ) == (8, 40)
    split_index(source, tmp_path / "sharded", 2)
    for path in load_shard_manifest(tmp_path / "sharded").shard_paths(tmp_path / "sharded"):
        assert open_index(path).manifest.hnsw_m == 8
        assert graph_params(path / HNSW_FILE) == HnswParams(m=8, ef_construction=40)
    manifest_file = source / "manifest.json"
    old = json.loads(manifest_file.read_text())
    del old["hnsw_m"], old["hnsw_ef_construction"]
    manifest_file.write_text(json.dumps(old))
    split_index(source, tmp_path / "sharded", 2, force=True)
    for path in load_shard_manifest(tmp_path / "sharded").shard_paths(tmp_path / "sharded"):
        assert graph_params(path / HNSW_FILE) == HnswParams(m=8, ef_construction=40)
    # A compaction of the source keeps them too (it rebuilt the graph with the defaults).
    writer = IndexWriter(source)
    writer.delete(["d1", "d2"])
    writer.compact()
    writer.close()
    compacted = open_index(source)
    assert graph_params(compacted.data_path / HNSW_FILE) == params
