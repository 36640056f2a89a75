"""The manifest of a Lucene-backed index: its own format version and settings; tantivy
manifests are written exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridsearch.errors import BuildError, IndexFormatError
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.lucene_build import attach_lucene_index
from hybridsearch.storage.manifest import (
    LUCENE_FORMAT_VERSION,
    LuceneInfo,
    Manifest,
    load_manifest,
)


def test_lucene_manifest_round_trips(tmp_path: Path) -> None:
    info = LuceneInfo(index_dir="/data/lucene", segments="segments_2", k1=1.2, b=0.75)
    manifest = Manifest(
        document_count=3,
        ordinal_count=3,
        created_at="2026-12-02T00:00:00+00:00",
        format_version=LUCENE_FORMAT_VERSION,
        sparse_backend="lucene",
        lucene=info,
    )
    manifest.save(tmp_path)
    assert load_manifest(tmp_path) == dataclass_with_committed(manifest)
    assert info.path(tmp_path) == Path("/data/lucene")
    assert LuceneInfo().path(tmp_path) == tmp_path / "sparse"


def dataclass_with_committed(manifest: Manifest) -> Manifest:
    import dataclasses

    return dataclasses.replace(manifest, committed_at=manifest.created_at)


def test_tantivy_manifest_has_no_lucene_keys(tmp_path: Path) -> None:
    Manifest(document_count=0, ordinal_count=0, created_at="x").save(tmp_path)
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert "lucene" not in written
    assert "sparse_backend" not in written


def test_lucene_backend_without_settings_is_refused(tmp_path: Path) -> None:
    Manifest(document_count=0, ordinal_count=0, created_at="x").save(tmp_path)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"sparse_backend": "lucene"}))
    with pytest.raises(IndexFormatError, match="sparse backend"):
        load_manifest(tmp_path)


def test_attach_refuses_a_lucene_index_inside_out(tmp_path: Path) -> None:
    """The attached Lucene index is served from where it is: replacing an ``out`` that holds
    it would delete it (refused before the Lucene index is read, so no JVM is needed)."""
    out = tmp_path / "idx"
    build_index([], out, encoder=None)
    lucene = out / "lucene"
    lucene.mkdir()
    (lucene / "segments_1").write_text("a Lucene index")
    with pytest.raises(BuildError, match=rf"^{lucene} is inside {out}: replacing {out} would"):
        attach_lucene_index(lucene, out, encoder=None, encoder_info=None, force=True)
    assert (lucene / "segments_1").read_text() == "a Lucene index"
