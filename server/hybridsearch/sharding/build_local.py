"""Building a sharded collection in this process (`hybridsearch index --shards N`).

Documents are routed by `layout.shard_of`; each shard is built by `storage.builder.build_index`
(so it is a complete index directory), all under a locked staging directory that is renamed
into place after ``shards.json`` is written (`storage.replace`): a build that dies leaves
nothing visible at ``out``, and ``--force`` never replaces a collection a writer serves.
The distributed build (Ray Data) must produce the same shards: same documents per shard, same
order, same vectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.layout import ShardManifest, shard_of, write_shard_manifest
from hybridsearch.storage.builder import BuildSummary, build_index, start_build, utc_now
from hybridsearch.storage.files import dir_size_bytes, fsync_dir
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.storage.replace import BUILDING_SHARDS, StagingDir, swap_into_place
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


def start_sharded_build(out: Path, force: bool) -> StagingDir:
    """The (locked) staging directory of a sharded build of ``out``, after undoing what a
    crashed build left; raises `BuildError` when ``out`` exists without ``force``,
    `IndexLockedError` when a writer serves it or one of its shards."""
    return start_build(out, force, BUILDING_SHARDS)


def commit_sharded(staging: StagingDir, out: Path, manifest: ShardManifest) -> None:
    """Write the shard manifest into ``staging`` and rename it to ``out`` (the commit; an
    existing ``out`` is replaced as `storage.replace.swap_into_place` does: never under a
    writer of one of its shards, and a crash leaves the old collection or the new one)."""
    write_shard_manifest(staging.path, manifest)
    fsync_dir(staging.path)
    swap_into_place(staging, out)


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
    manifest = ShardManifest(count, encoder_info, schema or CollectionSchema(), utc_now())
    staging = start_sharded_build(out, force)
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
                split_by_shard(docs, count), manifest.shard_paths(staging.path), strict=True
            )
        )
        commit_sharded(staging, out, manifest)
    except BaseException:
        staging.remove()
        raise
    return ShardedBuildSummary(summaries, dir_size_bytes(out))
