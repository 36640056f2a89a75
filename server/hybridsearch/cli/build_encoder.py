"""The document encoder an `index` command builds with, from its arguments."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hybridsearch.encoders.base import Encoder
    from hybridsearch.storage.manifest import EncoderInfo


def build_encoder(args: argparse.Namespace) -> tuple[Encoder | None, EncoderInfo | None]:
    """``--model`` (default: the embedded model) on ``--device``, or none with ``--no-dense``.

    The engine is imported here, not at module level, so `hybridsearch --help` stays light.
    """
    if args.no_dense:
        return None, None
    from hybridsearch.engine.loader import (  # noqa: PLC0415
        default_model_dir,
        encoder_info_of,
        load_query_encoder,
    )

    model = args.model or default_model_dir()
    encoder = load_query_encoder(
        model, args.device, max_length=args.max_length, batch_size=args.batch_size
    )
    return encoder, encoder_info_of(encoder)
