"""The layout of a sharded collection: N complete index directories and one shard manifest.

::

    DIR/shards.json          the shard manifest (this module): count, hash, encoder, schema
    DIR/shard-00000/         a complete index directory of today's format (`serve --index`,
    DIR/shard-00001/         `eval --index`, `models check`, `compact` work on each one)
    ...

A document lives in shard ``shard_of(id, N)``: the first 8 bytes of the SHA-256 of its id's
UTF-8 bytes, read as a big-endian unsigned integer, modulo N (``hash`` = ``sha256-u64-mod``).
The hash is stable across processes, machines and Python versions (unlike ``hash()``), so a
writer on any node routes an id to the same shard. ``shards.json`` is written last, atomically:
a directory without it is not a sharded collection (a build that died shows nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridsearch.errors import IndexFormatError, SchemaError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.storage.files import write_json_atomic
from hybridsearch.storage.manifest import SHARD_MANIFEST_FILE, EncoderInfo
from hybridsearch.storage.replace import recover_replacement

SHARD_MANIFEST = SHARD_MANIFEST_FILE
SHARD_FORMAT = 1
HASH_NAME = "sha256-u64-mod"
MAX_SHARDS = 1024


def shard_of(doc_id: str, count: int) -> int:
    """The shard (0..count-1) that holds the document ``doc_id``."""
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shard count must be in [1, {MAX_SHARDS}] (got {count})")
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_dir_name(shard: int) -> str:
    """The directory name of shard number ``shard``."""
    return f"shard-{shard:05d}"


@dataclass(frozen=True, slots=True)
class ShardManifest:
    """What ``shards.json`` records about a sharded collection."""

    shard_count: int
    encoder: EncoderInfo | None = None
    schema: CollectionSchema = CollectionSchema()
    created_at: str = ""
    hash: str = HASH_NAME
    format_version: int = SHARD_FORMAT

    def shard_paths(self, root: Path) -> list[Path]:
        """Every shard's index directory under ``root``, in shard order."""
        return [root / shard_dir_name(i) for i in range(self.shard_count)]

    def to_json(self) -> dict[str, Any]:
        """The manifest as ``shards.json`` holds it."""
        return {
            "format": self.format_version,
            "shard_count": self.shard_count,
            "hash": self.hash,
            "encoder": None if self.encoder is None else dataclasses.asdict(self.encoder),
            "schema": self.schema.to_json(),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ShardManifest:
        """Parse ``shards.json``; raise `IndexFormatError` saying what is wrong."""
        if not isinstance(obj, dict):
            raise IndexFormatError(f"{SHARD_MANIFEST}: not a JSON object")
        if obj.get("format") != SHARD_FORMAT:
            raise IndexFormatError(
                f"{SHARD_MANIFEST}: format {obj.get('format')!r}, this server reads {SHARD_FORMAT}"
            )
        if obj.get("hash") != HASH_NAME:
            raise IndexFormatError(f"{SHARD_MANIFEST}: unknown hash {obj.get('hash')!r}")
        count = obj.get("shard_count")
        if not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
            raise IndexFormatError(f"{SHARD_MANIFEST}: bad shard_count {count!r}")
        try:
            encoder = EncoderInfo(**obj["encoder"]) if obj.get("encoder") else None
            schema = CollectionSchema.from_json(obj.get("schema") or {})
        except (TypeError, ValueError, SchemaError) as exc:
            raise IndexFormatError(f"{SHARD_MANIFEST}: {exc}") from exc
        return cls(count, encoder, schema, str(obj.get("created_at", "")))


def is_sharded(path: Path) -> bool:
    """Whether ``path`` is a sharded collection (it has a shard manifest).

    A build killed between its two renames left the collection that was at ``path`` beside
    it: put back first (as `storage.manifest.load_manifest` does for one index).
    """
    if not path.is_dir():
        recover_replacement(path)
    return (path / SHARD_MANIFEST).is_file()


def load_shard_manifest(root: Path) -> ShardManifest:
    """Read ``root/shards.json`` and check that every shard directory exists."""
    path = root / SHARD_MANIFEST
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFormatError(f"{root}: no {SHARD_MANIFEST}; not a sharded collection") from None
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{path}: unreadable ({exc})") from exc
    manifest = ShardManifest.from_json(obj)
    missing = [p.name for p in manifest.shard_paths(root) if not p.is_dir()]
    if missing:
        raise IndexFormatError(f"{root}: shard directories missing: {', '.join(missing[:5])}")
    return manifest


def write_shard_manifest(root: Path, manifest: ShardManifest) -> None:
    """Write ``root/shards.json`` atomically: the commit point of a sharded build."""
    write_json_atomic(root / SHARD_MANIFEST, manifest.to_json())
