"""Build a ready engine from settings: open the index, load the encoder it was built with."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hybridsearch.config import Device, ServerSettings
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine import HybridSearcher
from hybridsearch.errors import IndexFormatError
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import EncoderInfo

log = logging.getLogger(__name__)


def load_query_encoder(model_dir: Path, device: Device, intra_op_threads: int = 0) -> Encoder:
    """The ONNX encoder of a model directory, on the requested device."""
    from hybridsearch.encoders.onnx_encoder import load_encoder  # noqa: PLC0415 (onnxruntime is heavy)

    encoder: Encoder = load_encoder(
        model_dir, device=device.value, intra_op_threads=intra_op_threads or None
    )
    return encoder


def serving_encoder(settings: ServerSettings, model_dir: Path) -> Encoder:
    """The query encoder a server uses: the ONNX encoder, behind the micro-batcher if enabled."""
    from hybridsearch.encoders.batching import BatchingEncoder, BatchingSettings  # noqa: PLC0415

    encoder = load_query_encoder(model_dir, settings.device, settings.encoder_threads)
    if not settings.encode_batching:
        return encoder
    limits = BatchingSettings(
        max_batch_size=settings.max_batch_size,
        max_wait_us=settings.max_wait_us,
        max_batch_tokens=settings.max_batch_tokens,
        max_queue=settings.encode_queue,
    )
    return BatchingEncoder(encoder, limits)


def encoder_info_of(model_dir: Path) -> EncoderInfo:
    """What an index manifest records about the encoder of a model directory."""
    from hybridsearch.encoders.config import load_config  # noqa: PLC0415

    config = load_config(model_dir)
    return EncoderInfo(
        model_id=config.model_id,
        dimension=config.dimension,
        pooling=config.pooling.value,
        normalize=config.normalize,
        max_length=config.max_length,
        query_prefix=config.query_prefix,
        document_prefix=config.document_prefix,
    )


def load_engine(settings: ServerSettings) -> HybridSearcher:
    """Open ``settings.index`` and, when it has vectors and a model is given, its encoder."""
    index = open_index(settings.index)
    encoder = None
    if index.manifest.encoder is not None:
        if settings.model is None:
            log.warning(
                "index %s has vectors but no --model was given: only SPARSE mode is served",
                settings.index,
            )
        else:
            encoder = serving_encoder(settings, settings.model)
    elif settings.model is not None:
        raise IndexFormatError(
            f"{settings.index} has no vectors (built with --no-dense); drop --model or rebuild"
        )
    # One dense-arm thread per search thread, so concurrent searches reach the batcher together.
    arm_pool = ThreadPoolExecutor(max_workers=settings.search_threads, thread_name_prefix="dense")
    engine = HybridSearcher(index, encoder, arm_pool=arm_pool)
    log.info(
        "index %s: %d documents, vectors: %s, encoder: %s on %s",
        settings.index,
        index.manifest.document_count,
        "yes" if index.vectors is not None else "no",
        encoder.model_id if encoder else "none",
        encoder.provider if encoder else "-",
    )
    return engine
