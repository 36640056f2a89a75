"""The shard layout: a stable hash spread evenly, and a manifest that round-trips and refuses
what it cannot read."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hybridsearch.errors import IndexFormatError
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.sharding.layout import (
    SHARD_MANIFEST,
    ShardManifest,
    is_sharded,
    load_shard_manifest,
    shard_of,
    write_shard_manifest,
)
from hybridsearch.storage.manifest import EncoderInfo


def test_shard_of_is_stable_and_even() -> None:
    # A documented contract (sha256, first 8 bytes, big-endian), never Python's salted hash().
    assert shard_of("", 1) == 0
    assert (
        shard_of("abc", 7)
        == int.from_bytes(
            bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")[:8],
            "big",
        )
        % 7
    )
    counts = Counter(shard_of(f"doc{i}", 4) for i in range(8000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 1800
    with pytest.raises(ValueError, match="shard count"):
        shard_of("x", 0)


def test_manifest_round_trip_and_refusals(tmp_path: Path) -> None:
    schema = CollectionSchema((MetadataField("year", MetadataType.INTEGER),))
    info = EncoderInfo("m", 4, "mean", True, 128)
    manifest = ShardManifest(2, info, schema, "2026-12-01T00:00:00Z")
    for path in manifest.shard_paths(tmp_path):
        path.mkdir()
    assert not is_sharded(tmp_path)
    write_shard_manifest(tmp_path, manifest)
    assert is_sharded(tmp_path) and load_shard_manifest(tmp_path) == manifest
    (tmp_path / "shard-00001").rmdir()
    with pytest.raises(IndexFormatError, match="shard-00001"):
        load_shard_manifest(tmp_path)
    for bad in ({"format": 9}, {**manifest.to_json(), "hash": "crc32"}, [1]):
        (tmp_path / SHARD_MANIFEST).write_text(json.dumps(bad))
        with pytest.raises(IndexFormatError):
            load_shard_manifest(tmp_path)
