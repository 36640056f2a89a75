"""Build a ready engine from settings: open the index, load the encoder it was built with."""

from __future__ import annotations

import logging
from pathlib import Path

from hybridsearch.config import Device, ServerSettings
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine import HybridSearcher
from hybridsearch.errors import IndexFormatError
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import EncoderInfo

log = logging.getLogger(__name__)


def load_query_encoder(model_dir: Path, device: Device) -> Encoder:
    """The ONNX encoder of a model directory, on the requested device."""
    from hybridsearch.encoders.onnx_encoder import load_encoder  # noqa: PLC0415 (onnxruntime is heavy)

    encoder: Encoder = load_encoder(model_dir, device=device.value)
    return encoder


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
            encoder = load_query_encoder(settings.model, settings.device)
    elif settings.model is not None:
        raise IndexFormatError(
            f"{settings.index} has no vectors (built with --no-dense); drop --model or rebuild"
        )
    engine = HybridSearcher(index, encoder)
    log.info(
        "index %s: %d documents, vectors: %s, encoder: %s on %s",
        settings.index,
        index.manifest.document_count,
        "yes" if index.vectors is not None else "no",
        encoder.model_id if encoder else "none",
        encoder.provider if encoder else "-",
    )
    return engine
