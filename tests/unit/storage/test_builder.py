"""Bulk builds: dedupe, all-or-nothing, manifest versioning."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.errors import BuildError, IndexFormatError
from hybridsearch.sharding.layout import SHARD_MANIFEST
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import MANIFEST_FILE, load_manifest
from hybridsearch.types import Document
from tests.fakes import HASH_ENCODER_INFO, HashEncoder


def docs() -> list[Document]:
    return [
        Document("a", "Wing", "flutter of wings"),
        Document("b", "Nozzle", "rocket nozzle thrust"),
        Document("a", "Wing v2", "replaced wing text"),
    ]


def test_last_duplicate_wins_and_is_counted(tmp_path: Path) -> None:
    summary = build_index(docs(), tmp_path / "idx", encoder=None)
    assert (summary.documents, summary.duplicates, summary.has_vectors) == (2, 1, False)
    index = open_index(tmp_path / "idx")
    assert index.ids == ["a", "b"]
    assert index.sparse.fetch_by_id("a").title == "Wing v2"  # type: ignore[union-attr]
    assert index.manifest.document_count == 2
    assert summary.bytes_on_disk > 0


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken() -> Iterator[Document]:
        yield Document("a", "", "text")
        raise RuntimeError("corpus went away")

    with pytest.raises(RuntimeError):
        build_index(broken(), tmp_path / "idx", encoder=None)
    assert list(tmp_path.iterdir()) == []


def test_existing_index_needs_force(tmp_path: Path) -> None:
    build_index(docs(), tmp_path / "idx", encoder=None)
    with pytest.raises(BuildError, match="--force"):
        build_index(docs()[:1], tmp_path / "idx", encoder=None)
    build_index(docs()[:1], tmp_path / "idx", encoder=None, force=True)
    assert open_index(tmp_path / "idx").ids == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_other_format_version_is_refused_clearly(tmp_path: Path) -> None:
    build_index(docs(), tmp_path / "idx", encoder=None)
    path = tmp_path / "idx" / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match=r"format version 99.*rebuild"):
        load_manifest(tmp_path / "idx")


def test_not_an_index(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="not a hybridsearch index"):
        open_index(tmp_path)


def test_precomputed_vectors_equal_encoding_in_the_build(tmp_path: Path) -> None:
    from hybridsearch.storage.builder import dense_text
    from tests.fakes import HASH_ENCODER_INFO, HashEncoder

    encoder = HashEncoder()
    build_index(docs(), tmp_path / "enc", encoder=encoder, encoder_info=HASH_ENCODER_INFO)
    rows = encoder.encode_documents([dense_text(d) for d in docs()])  # one per input document
    summary = build_index(docs(), tmp_path / "pre", encoder=None, encoder_info=HASH_ENCODER_INFO,
                          vectors=rows)  # fmt: skip
    encoded, precomputed = open_index(tmp_path / "enc"), open_index(tmp_path / "pre")
    assert summary.has_vectors and precomputed.ids == encoded.ids == ["a", "b"]
    assert precomputed.vectors is not None and encoded.vectors is not None
    # "a" keeps its last row (the replacing document's), as the encoding build does.
    assert (precomputed.vectors[:] == encoded.vectors[:]).all()
    assert (precomputed.vectors[0] == rows[2]).all()
    assert precomputed.manifest.encoder == HASH_ENCODER_INFO


def test_precomputed_vectors_must_fit_the_documents(tmp_path: Path) -> None:
    from tests.fakes import HASH_ENCODER_INFO

    short = np.zeros((2, HASH_ENCODER_INFO.dimension), dtype=np.float32)
    with pytest.raises(BuildError, match=r"need \(3, "):
        build_index(docs(), tmp_path / "x", encoder=None, encoder_info=HASH_ENCODER_INFO,
                    vectors=short)  # fmt: skip
    with pytest.raises(BuildError, match="needs its EncoderInfo"):
        build_index(docs(), tmp_path / "x", encoder=None, vectors=short)
    assert not (tmp_path / "x").exists()


def record_durability(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(``fsync`` | ``replace``, path) of every fsync and rename, in order, from here on."""
    import os

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        real_replace(src, dst)
        events.append(("replace", str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_built_id_map_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hybridsearch.storage.manifest import IDS_FILE

    events = record_durability(monkeypatch)
    build_index(docs(), tmp_path / "idx", encoder=None)
    monkeypatch.undo()
    assert IDS_FILE in [Path(path).name for op, path in events if op == "fsync"]


def test_an_hnsw_graph_is_fsynced_and_so_is_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybridsearch.dense.hnsw import HNSW_FILE, build_hnsw

    rows = np.random.default_rng(0).random((20, 8), dtype=np.float32)
    events = record_durability(monkeypatch)
    build_hnsw(rows, tmp_path / HNSW_FILE)
    monkeypatch.undo()
    rename = events.index(("replace", str(tmp_path / HNSW_FILE)))
    assert any(
        op == "fsync" and Path(path).name.startswith(f".{HNSW_FILE}.")
        for op, path in events[:rename]
    )
    assert ("fsync", str(tmp_path)) in events[rename + 1 :]


@pytest.mark.parametrize("what", ["directory", "file", "symlink"])
def test_force_refuses_to_replace_what_is_not_an_index(tmp_path: Path, what: str) -> None:
    out = tmp_path / "home"
    if what == "directory":
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
    elif what == "file":
        out.write_text("notes")
    else:
        build_index(docs(), tmp_path / "real", encoder=None)
        out.symlink_to(tmp_path / "real")
    before = sorted(p.name for p in tmp_path.iterdir())
    # A link to an index is refused as a link (it said "not a hybridsearch index").
    why = "is a symbolic link; give the directory" if what == "symlink" else "exists and is not"
    with pytest.raises(BuildError, match=rf"home {why}"):
        build_index(docs(), out, encoder=None, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if what == "directory":
        assert (out / "thesis.tex").read_text() == "years of work"


def test_force_replaces_an_empty_directory_and_a_sharded_collection(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    build_index(docs(), empty, encoder=None, force=True)
    assert open_index(empty).ids == ["a", "b"]
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / SHARD_MANIFEST).write_text("{}")
    build_index(docs(), sharded, encoder=None, force=True)
    assert open_index(sharded).ids == ["a", "b"]


def test_ctrl_c_while_waiting_for_the_vectors_stops_the_encoder(tmp_path: Path) -> None:
    batches: list[int] = []

    class Slow(HashEncoder):
        def encode_documents(
            self, texts: Sequence[str], batch_size: int | None = None
        ) -> NDArray[np.float32]:
            batches.append(len(texts))
            if len(batches) == 2:  # the build thread now waits for the vectors: Ctrl-C
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            time.sleep(0.05)
            return super().encode_documents(texts, batch_size)

    corpus = [Document(f"d{i}", "", f"text {i}") for i in range(200)]
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        build_index(
            corpus, tmp_path / "idx", encoder=Slow(), encoder_info=HASH_ENCODER_INFO, batch_size=1
        )
    assert time.monotonic() - started < 5  # the whole encoding takes 10 s
    # The encoder stopped after its batch in flight: no thread left encoding the rest (the
    # interpreter would wait for it at exit).
    assert not [t for t in threading.enumerate() if t.name.startswith("build-encoder")]
    assert len(batches) <= 4
    assert list(tmp_path.iterdir()) == []
