"""Evaluation indexes built once per corpus and encoder, cached on disk.

An index is found at ``<cache>/<collection>/<model id>-<corpus sha256, 16 hex>`` (plus
``-schema-<sha256 of the schema>`` when one is declared): a changed corpus file, schema or
another model gets a new directory; an unchanged pair is reused. Builds are
atomic (``build_index`` renames a finished directory into place), so a directory that opens
is complete.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tqdm import tqdm

from hybridsearch.encoders.base import Encoder
from hybridsearch.errors import HybridSearchError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.progress import bar_options
from hybridsearch.storage.builder import build_index
from hybridsearch.storage.corpus import count_lines, read_corpus
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import EncoderInfo

DEFAULT_CACHE = Path("var/eval-indexes")
_HASH_CHUNK = 1 << 20
_KEY_HEX = 16


def corpus_sha256(path: Path) -> str:
    """Hex sha256 of a corpus file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(
    cache: Path, corpus: Path, model_id: str, schema: CollectionSchema | None = None
) -> Path:
    """Where the index of ``corpus`` encoded by ``model_id`` (with ``schema``) lives."""
    key = f"{model_id}-{corpus_sha256(corpus)[:_KEY_HEX]}"
    if schema is not None and schema.fields:
        text = json.dumps(schema.to_json(), sort_keys=True).encode("utf-8")
        key += f"-schema-{hashlib.sha256(text).hexdigest()[:_KEY_HEX]}"
    return cache / corpus.parent.name / key


def cached_index(
    corpus: Path,
    encoder: Encoder,
    encoder_info: EncoderInfo,
    cache: Path = DEFAULT_CACHE,
    *,
    progress: bool = True,
    schema: CollectionSchema | None = None,
) -> Path:
    """The cached index of ``corpus`` with vectors of ``encoder``, built on first use.

    With ``schema``, the corpus's metadata of the declared fields is indexed for filters.
    """
    target = cache_path(cache, corpus, encoder_info.model_id, schema)
    if target.exists():
        try:
            open_index(target)
        except HybridSearchError:
            pass  # unreadable (e.g. an older format): rebuild below
        else:
            return target
    with tqdm(
        total=count_lines(corpus),
        desc=f"indexing {corpus.parent.name}",
        **bar_options(not progress),
    ) as bar:
        build_index(
            read_corpus(corpus, schema=schema),
            target,
            encoder=encoder,
            encoder_info=encoder_info,
            force=True,
            on_dense_progress=bar.update,
            schema=schema,
        )
    return target
