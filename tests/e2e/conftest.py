"""Collection indexes shared by every end-to-end test: each collection is encoded once a run.

Built through the eval index cache (`hybridsearch.eval.index_cache`) into a session temp
directory, so a run never reuses an index from an earlier run or another checkout. `make test`
gives one run's pytest and clients' live tests the same fresh cache (HYBRIDSEARCH_RUN_CACHE, a
directory it creates and deletes): SciFact, built here with synthetic metadata, is then encoded
once for both.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from hybridsearch.cli.index import sample_corpus_path
from hybridsearch.config import Device
from hybridsearch.encoders.onnx_encoder import OnnxEncoder
from hybridsearch.engine.loader import encoder_info_of, load_query_encoder
from hybridsearch.eval.index_cache import cached_index
from hybridsearch.eval.synthetic_metadata import metadata_index


@pytest.fixture(scope="session")
def query_encoder(model_dir: Path) -> OnnxEncoder:
    """The default model on CPU (documents and queries)."""
    return load_query_encoder(model_dir, Device.CPU)


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's eval index cache (HYBRIDSEARCH_RUN_CACHE under `make test`)."""
    shared = os.environ.get("HYBRIDSEARCH_RUN_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("eval-indexes")


def _collection_index(shared_data: Path, name: str, encoder: OnnxEncoder, cache: Path) -> Path:
    corpus = shared_data / name / "corpus.jsonl"
    return cached_index(corpus, encoder, encoder_info_of(encoder), cache, progress=False)


@pytest.fixture(scope="session")
def scifact_index(shared_data: Path, query_encoder: OnnxEncoder, eval_cache: Path) -> Path:
    """SciFact (5,183 documents) with vectors of the default model: minutes on 2 cores.

    It carries the synthetic metadata of `hybridsearch.eval.synthetic_metadata` (declared, so
    filterable), which the clients' live filter tests search; text, ids and vectors are
    SciFact's own, so every effectiveness figure is that of the plain corpus.
    """
    corpus = shared_data / "scifact" / "corpus.jsonl"
    info = encoder_info_of(query_encoder)
    return metadata_index(corpus, query_encoder, info, eval_cache, progress=False)


@pytest.fixture(scope="session")
def cranfield_index(
    shared_data: Path, query_encoder: OnnxEncoder, eval_cache: Path, request: pytest.FixtureRequest
) -> Path:
    """Cranfield (1,400 documents) with vectors of the default model.

    The bundled sample corpus is the shared Cranfield corpus, byte for byte: the sample index
    the README tests build (`sample_hybrid_index`) serves here too, so Cranfield is encoded
    once a run. Should the two ever differ, Cranfield is built from the shared data.
    """
    shared = shared_data / "cranfield" / "corpus.jsonl"
    with gzip.open(sample_corpus_path(), "rb") as sample, shared.open("rb") as original:
        same = _digest(sample) == _digest(original)
    if same:
        index: Path = request.getfixturevalue("sample_hybrid_index")
        return index
    return _collection_index(shared_data, "cranfield", query_encoder, eval_cache)


def _digest(stream: BinaryIO) -> str:
    return hashlib.file_digest(stream, "sha256").hexdigest()
