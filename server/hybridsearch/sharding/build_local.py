"""Building a sharded collection in this process (`hybridsearch index --shards N`).

Documents are routed by `layout.shard_of`; each shard is built by `storage.builder.build_index`
(so it is a complete index directory), all under a temporary directory that is renamed into
place after ``shards.json`` is written: a build that dies leaves nothing visible at ``out``.
The distributed build (Ray Data) must produce the same shards: same documents per shard, same
order, same vectors.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridsearch.errors import BuildError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.layout import ShardManifest, shard_of, write_shard_manifest
from hybridsearch.storage.builder import BuildSummary, build_index, utc_now
from hybridsearch.storage.files import dir_size_bytes, fsync_dir
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.types import Document


@dataclass(frozen=True, slots=True)
class ShardedBuildSummary:
    """What a sharded build did, in total and per shard."""

    shards: tuple[BuildSummary, ...]
    bytes_on_disk: int

    @property
    def documents(self) -> int:
        """Documents indexed, over every shard."""
        return sum(s.documents for s in self.shards)

    @property
    def duplicates(self) -> int:
        """Duplicate ids replaced (a duplicate always lands in its original's shard)."""
        return sum(s.duplicates for s in self.shards)


def split_by_shard(docs: Iterable[Document], count: int) -> list[list[Document]]:
    """The documents of each shard, in their input order."""
    shards: list[list[Document]] = [[] for _ in range(count)]
    for doc in docs:
        shards[shard_of(doc.id, count)].append(doc)
    return shards


def staging_dir(out: Path) -> Path:
    """Where a sharded build of ``out`` is assembled before it is renamed into place."""
    return out.parent / f".{out.name}.building-shards-{os.getpid()}"


def commit_sharded(
    staging: Path,
    out: Path,
    manifest: ShardManifest,
    *,
    force: bool,
) -> None:
    """Write the shard manifest into ``staging`` and rename it to ``out`` (the commit)."""
    write_shard_manifest(staging, manifest)
    fsync_dir(staging)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        if not force:
            raise BuildError(f"{out} already exists (use --force to replace it)")
        os.replace(out, old)
    os.replace(staging, out)
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


def build_sharded(
    docs: Iterable[Document],
    out: Path,
    count: int,
    *,
    encoder_info: EncoderInfo | None = None,
    schema: CollectionSchema | None = None,
    force: bool = False,
    **build_options: Any,
) -> ShardedBuildSummary:
    """Build ``count`` shards of ``docs`` at ``out``; ``build_options`` go to `build_index`
    (``encoder``, ``batch_size``, progress callbacks, ``dense_index``, ``hnsw``)."""
    if out.exists() and not force:
        raise BuildError(f"{out} already exists (use --force to replace it)")
    manifest = ShardManifest(count, encoder_info, schema or CollectionSchema(), utc_now())
    staging = staging_dir(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        summaries = tuple(
            build_index(
                shard_docs,
                path,
                encoder_info=encoder_info,
                schema=schema,
                **build_options,
            )
            for shard_docs, path in zip(
                split_by_shard(docs, count), manifest.shard_paths(staging), strict=True
            )
        )
        commit_sharded(staging, out, manifest, force=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShardedBuildSummary(summaries, dir_size_bytes(out))
