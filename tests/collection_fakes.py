"""A `CollectionFactory` with no ONNX model: model ``hash`` is `HashEncoder` (one encoder and
one dense arm shared by every collection using it), empty is BM25-only. A sharded collection
is served by the sharded front over its shards in this process (as `serve --data-dir`
without Ray)."""

from __future__ import annotations

from pathlib import Path

from hybridsearch.engine.catalog import CollectionEntry
from hybridsearch.engine.dense_arm import DenseArm
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import InvalidArgumentError
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.group import LocalShardGroup
from hybridsearch.sharding.layout import is_sharded, load_shard_manifest
from hybridsearch.sharding.searcher import ShardedSearcher, ShardedWriter
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.writer import IndexWriter
from tests.fakes import HASH_ENCODER_INFO, HashEncoder

HASH_MODEL = "hash"


class HashCollectionFactory:
    """Builds and opens collections with `HashEncoder` vectors (model ``hash``)."""

    def __init__(self) -> None:
        self.encoder = HashEncoder()
        self.arm = DenseArm(self.encoder)
        self.opened: list[LoadedIndex] = []

    def check_model(self, model: str) -> None:
        if model not in ("", HASH_MODEL):
            raise InvalidArgumentError.single("model", f"unknown model {model!r}")

    def build_empty(self, out: Path, entry: CollectionEntry) -> None:
        dense = entry.model == HASH_MODEL
        if entry.shards:
            build_sharded(
                iter(()),
                out,
                entry.shards,
                encoder=self.encoder if dense else None,
                encoder_info=HASH_ENCODER_INFO if dense else None,
                schema=entry.schema,
            )
            return
        build_index(
            iter(()),
            out,
            encoder=self.encoder if dense else None,
            encoder_info=HASH_ENCODER_INFO if dense else None,
            schema=entry.schema,
        )

    def open(self, path: Path, entry: CollectionEntry) -> LoadedIndex:
        if is_sharded(path):
            manifest = load_shard_manifest(path)
            sharded = ShardedSearcher(
                LocalShardGroup(path, manifest),
                manifest,
                self.encoder if manifest.encoder is not None else None,
                dense_arm=self.arm,
            )
            loaded = LoadedIndex(sharded, ShardedWriter(sharded))
            self.opened.append(loaded)
            return loaded
        writer = IndexWriter(path)
        index = writer.committed()
        encoder = self.encoder if index.manifest.encoder is not None else None
        searcher = HybridSearcher(index, encoder, dense_arm=self.arm)
        loaded = LoadedIndex(searcher, Ingestor(writer, searcher))
        self.opened.append(loaded)
        return loaded

    def close(self) -> None:
        self.arm.close()
