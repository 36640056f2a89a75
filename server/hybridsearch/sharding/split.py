"""Splitting an existing index into a sharded collection (`hybridsearch shards split`).

Every live document of the source index goes to shard `layout.shard_of(id, N)` with its stored
fields and its stored vector: nothing is encoded again, so a split takes seconds where a build
takes minutes, and each shard's vectors are the source's, bit for bit (a sharded dense search
then equals the source's exactly); an HNSW source's shards are graphs of its M and
efConstruction. Documents keep their source order within a shard. The
shards are committed as `build_local.build_sharded` commits them: assembled in a staging
directory, ``shards.json`` last, renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybridsearch.dense.select import DenseIndexKind
from hybridsearch.errors import BuildError
from hybridsearch.sharding.build_local import (
    ShardedBuildSummary,
    commit_sharded,
    start_sharded_build,
)
from hybridsearch.sharding.layout import ShardManifest, shard_of
from hybridsearch.storage.builder import build_index, utc_now
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.types import Document

FETCH_CHUNK = 1024


def live_documents(index: OpenIndex) -> tuple[list[Document], list[int]]:
    """The live documents of ``index`` in ordinal order, and their ordinals."""
    ordinals = [o for o in range(len(index.ids)) if index.is_live(o)]
    docs: list[Document] = []
    for start in range(0, len(ordinals), FETCH_CHUNK):
        part = ordinals[start : start + FETCH_CHUNK]
        stored = index.sparse.fetch(part)
        missing = [o for o in part if o not in stored]
        if missing:
            raise BuildError(f"split: stored fields of ordinal {missing[0]} are missing")
        docs.extend(stored[o].document() for o in part)
    return docs, ordinals


def split_index(source: Path, out: Path, count: int, *, force: bool = False) -> ShardedBuildSummary:
    """Write the live documents of the index at ``source`` as ``count`` shards at ``out``."""
    index = open_index(source)
    manifest = index.manifest
    docs, ordinals = live_documents(index)
    by_shard: list[list[int]] = [[] for _ in range(count)]
    for position, doc in enumerate(docs):
        by_shard[shard_of(doc.id, count)].append(position)
    sharded = ShardManifest(count, manifest.encoder, manifest.schema, utc_now())
    hnsw = None  # an HNSW source's shards get its graph's M and efConstruction
    if DenseIndexKind(manifest.dense_index) is DenseIndexKind.HNSW and index.vectors is not None:
        from hybridsearch.dense.hnsw import recorded_params  # noqa: PLC0415 (faiss: extra ann)

        hnsw = recorded_params(manifest, index.data_path)
    staging = start_sharded_build(out, force)
    try:
        summaries = []
        for positions, path in zip(by_shard, sharded.shard_paths(staging.path), strict=True):
            rows = None
            if index.vectors is not None and manifest.encoder is not None:
                rows = np.asarray(index.vectors[[ordinals[p] for p in positions]], np.float32)
            summaries.append(
                build_index(
                    [docs[p] for p in positions],
                    path,
                    encoder=None,  # the stored vectors, as they are: nothing is encoded
                    encoder_info=manifest.encoder if rows is not None else None,
                    vectors=rows,
                    dense_index=DenseIndexKind(manifest.dense_index),
                    hnsw=hnsw,
                    schema=manifest.schema,
                )
            )
        commit_sharded(staging, out, sharded)
    except BaseException:
        staging.remove()
        raise
    return ShardedBuildSummary(tuple(summaries), dir_size_bytes(out))
