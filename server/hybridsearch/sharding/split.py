"""Splitting an existing index into a sharded collection (`hybridsearch shards split`).

Every live document of the source index goes to shard `layout.shard_of(id, N)` with its stored
fields and its stored vector: nothing is encoded again, so a split takes seconds where a build
takes minutes, and each shard's vectors are the source's, bit for bit (a sharded dense search
then equals the source's exactly). Documents keep their source order within a shard. The
shards are committed as `build_local.build_sharded` commits them: assembled in a staging
directory, ``shards.json`` last, renamed into place.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.select import DenseIndexKind
from hybridsearch.errors import BuildError
from hybridsearch.sharding.build_local import ShardedBuildSummary, commit_sharded, staging_dir
from hybridsearch.sharding.layout import ShardManifest, shard_of
from hybridsearch.storage.builder import build_index, utc_now
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.types import Document

FETCH_CHUNK = 1024


class StoredVectors:
    """The encoder `build_index` sees when splitting: it hands back the source's vectors in
    the order they are asked for (`storage.builder.encode_corpus` encodes in document order),
    never encoding anything. Only documents can be "encoded"; every row exactly once."""

    provider = "stored-vectors"

    def __init__(self, model_id: str, rows: NDArray[np.float32]) -> None:
        self.model_id = model_id
        self._rows = rows
        self._next = 0

    @property
    def dimension(self) -> int:
        """The vectors' dimension."""
        return int(self._rows.shape[1])

    @property
    def unused(self) -> int:
        """Rows not handed out yet (0 once the shard is built)."""
        return len(self._rows) - self._next

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        """The next ``len(texts)`` stored rows."""
        end = self._next + len(texts)
        if end > len(self._rows):
            raise BuildError("split: more documents than stored vectors")
        rows, self._next = self._rows[self._next : end], end
        return rows

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Never called: a split encodes no query."""
        raise BuildError("split: stored vectors cannot encode queries")


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
    if out.exists() and not force:
        raise BuildError(f"{out} already exists (use --force to replace it)")
    index = open_index(source)
    manifest = index.manifest
    docs, ordinals = live_documents(index)
    by_shard: list[list[int]] = [[] for _ in range(count)]
    for position, doc in enumerate(docs):
        by_shard[shard_of(doc.id, count)].append(position)
    sharded = ShardManifest(count, manifest.encoder, manifest.schema, utc_now())
    staging = staging_dir(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        summaries = []
        for positions, path in zip(by_shard, sharded.shard_paths(staging), strict=True):
            encoder = None
            if index.vectors is not None and manifest.encoder is not None:
                rows = np.asarray(index.vectors[[ordinals[p] for p in positions]], np.float32)
                encoder = StoredVectors(manifest.encoder.model_id, rows)
            summaries.append(
                build_index(
                    [docs[p] for p in positions],
                    path,
                    encoder=encoder,
                    encoder_info=manifest.encoder if encoder is not None else None,
                    dense_index=DenseIndexKind(manifest.dense_index),
                    schema=manifest.schema,
                )
            )
            if encoder is not None and encoder.unused:
                raise BuildError(f"split: {encoder.unused} stored vectors left unused")
        commit_sharded(staging, out, sharded, force=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShardedBuildSummary(tuple(summaries), dir_size_bytes(out))
