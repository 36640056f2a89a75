"""Bulk index builds: corpus → tantivy + dense matrix + id map + manifest, all or nothing.

The build writes into a temporary directory beside the target and renames it into place only
when every part is complete, so a failed or interrupted build leaves no half-written index.
Replacing an index (``force``) is refused while a writer serves it, and a crash in the middle
of the replacement is undone by the next build or open (see `storage.replace`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.select import DenseIndexKind
from hybridsearch.dense.store import write_vectors
from hybridsearch.encoders.base import Encoder
from hybridsearch.errors import BuildError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.metadata.values import metadata_problem
from hybridsearch.sparse.tantivy_index import SparseWriter
from hybridsearch.storage.dense_build import BackgroundEncoding, ProgressFn, encode_by_length
from hybridsearch.storage.files import dir_size_bytes, fsync_file
from hybridsearch.storage.manifest import (
    IDS_FILE,
    SPARSE_DIR,
    VECTORS_FILE,
    EncoderInfo,
    Manifest,
)
from hybridsearch.storage.replace import (
    BUILDING,
    StagingDir,
    check_not_served,
    check_replaceable,
    recover_replacement,
    swap_into_place,
)
from hybridsearch.types import Document, unicode_problem

if TYPE_CHECKING:
    from hybridsearch.dense.hnsw import HnswParams


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What a build did."""

    documents: int
    duplicates: int
    seconds: float
    bytes_on_disk: int
    has_vectors: bool


def utc_now() -> str:
    """The current UTC time as an ISO 8601 string (seconds), as manifests record it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def dedupe_last_wins(docs: Iterable[Document]) -> tuple[list[Document], int]:
    """Documents with unique ids (a later duplicate replaces an earlier one) and the count."""
    unique, _, duplicates = dedupe_last_wins_positions(docs)
    return unique, duplicates


def dedupe_last_wins_positions(
    docs: Iterable[Document],
) -> tuple[list[Document], list[int], int]:
    """`dedupe_last_wins`, plus each kept document's position in the input (its vector's row
    when the vectors were computed elsewhere, one per input document)."""
    by_id: dict[str, tuple[Document, int]] = {}
    duplicates = 0
    for position, doc in enumerate(docs):
        if doc.id in by_id:
            duplicates += 1
        by_id[doc.id] = (doc, position)
    kept = list(by_id.values())
    return [doc for doc, _ in kept], [position for _, position in kept], duplicates


def dense_text(doc: Document) -> str:
    """The text the dense arm encodes for a document (the encoder adds its prefix)."""
    return f"{doc.title} {doc.text}".strip()


def encode_corpus(
    encoder: Encoder,
    docs: Sequence[Document],
    *,
    batch_size: int,
    on_progress: ProgressFn | None = None,
) -> NDArray[np.float32]:
    """Encode documents into a ``(len(docs), dim)`` float32 matrix, in document order
    (batches of similar token length, see `storage.dense_build`)."""
    return encode_by_length(
        encoder, [dense_text(d) for d in docs], batch_size=batch_size, on_progress=on_progress
    )


def build_index(
    docs: Iterable[Document],
    out: Path,
    *,
    encoder: Encoder | None,
    encoder_info: EncoderInfo | None = None,
    force: bool = False,
    batch_size: int = 32,
    on_sparse_progress: ProgressFn | None = None,
    on_dense_progress: ProgressFn | None = None,
    dense_index: DenseIndexKind = DenseIndexKind.EXACT,
    hnsw: HnswParams | None = None,
    schema: CollectionSchema | None = None,
    vectors: NDArray[np.float32] | None = None,
) -> BuildSummary:
    """Build an index at ``out`` from ``docs``; ordinals follow first-seen order of ids.

    ``vectors``: the documents' vectors, computed elsewhere (the distributed build encodes on
    a Ray actor pool), one row per input document in input order, with ``encoder=None`` and
    the ``encoder_info`` that made them; a duplicate id keeps its last row, as it keeps its
    last document.

    ``dense_index`` HNSW also writes the ANN graph of the vectors (needs faiss). ``schema``
    declares the filterable metadata fields; a document whose declared fields do not fit it
    fails the build (`BuildError` naming the id and field: check them first, as
    `storage.corpus.read_corpus` does, to skip them instead).
    """
    schema = schema or CollectionSchema()
    started = time.perf_counter()
    if encoder is not None and vectors is not None:
        raise BuildError("pass an encoder or precomputed vectors, not both")
    if (encoder is None and vectors is None) != (encoder_info is None):
        raise BuildError("an encoder (or precomputed vectors) needs its EncoderInfo")
    staging = start_build(out, force)
    tmp = staging.path
    try:
        unique, positions, duplicates = dedupe_last_wins_positions(docs)
        matrix: NDArray[np.float32] | None = None
        if vectors is not None:
            matrix = precomputed_matrix(vectors, positions, len(unique) + duplicates, encoder_info)
        # The encoder works on its own thread (its runs release the GIL) while this one
        # indexes BM25 and commits: the build takes about as long as the encoding alone.
        encoding = None
        try:
            if encoder is not None:
                encoding = BackgroundEncoding(
                    encoder,
                    [dense_text(d) for d in unique],
                    batch_size=batch_size,
                    on_progress=on_dense_progress,
                )
            _index_sparse(tmp, unique, schema, on_sparse_progress)
            if encoding is not None:
                matrix = encoding.result()
        except BaseException:
            # A failure, or Ctrl-C while this thread waits for the vectors: stop the encoder
            # after its batch in flight (its thread would otherwise keep the process alive
            # until the whole corpus is encoded).
            if encoding is not None:
                encoding.cancel()
            raise
        graph = None  # the HNSW parameters, recorded in the manifest
        if matrix is not None:
            write_vectors(tmp / VECTORS_FILE, matrix)
            if dense_index is DenseIndexKind.HNSW:
                from hybridsearch.dense.hnsw import (  # noqa: PLC0415
                    HNSW_FILE,
                    HnswParams,
                    build_hnsw,
                )

                graph = hnsw or HnswParams()
                build_hnsw(matrix, tmp / HNSW_FILE, graph)
        (tmp / IDS_FILE).write_text(
            json.dumps([d.id for d in unique], ensure_ascii=False), encoding="utf-8"
        )
        fsync_file(tmp / IDS_FILE)  # the manifest that names it is fsynced next
        now = utc_now()
        Manifest(
            document_count=len(unique),
            ordinal_count=len(unique),
            created_at=now,
            committed_at=now,
            encoder=encoder_info,
            dense_index=dense_index.value if matrix is not None else DenseIndexKind.EXACT.value,
            schema=schema,
            hnsw_m=graph.m if graph else 0,
            hnsw_ef_construction=graph.ef_construction if graph else 0,
        ).save(tmp)
        swap_into_place(staging, out)
    except BaseException:
        staging.remove()
        raise
    return BuildSummary(
        documents=len(unique),
        duplicates=duplicates,
        seconds=time.perf_counter() - started,
        bytes_on_disk=dir_size_bytes(out),
        has_vectors=encoder_info is not None,
    )


def _index_sparse(
    tmp: Path,
    docs: Sequence[Document],
    schema: CollectionSchema,
    on_progress: ProgressFn | None,
) -> None:
    """The BM25 index of ``docs`` (ordinals in order) under ``tmp``, committed."""
    writer = SparseWriter(tmp / SPARSE_DIR, create=True, metadata=schema)
    try:
        for ordinal, doc in enumerate(docs):
            problem = metadata_problem(schema, doc.metadata)
            if problem is not None:
                raise BuildError(f"document {doc.id!r}: {problem}")
            writer.add(ordinal, doc)
            if on_progress is not None:
                on_progress(1)
        writer.commit()
    except BaseException:
        # Stop tantivy's indexing threads, which would write into the directory the caller
        # is about to delete.
        writer.rollback()
        raise
    finally:
        writer.close()


def precomputed_matrix(
    vectors: NDArray[np.float32], positions: list[int], inputs: int, info: EncoderInfo | None
) -> NDArray[np.float32]:
    """The rows of ``vectors`` kept by deduplication, checked against the input and encoder."""
    dimension = None if info is None else info.dimension
    if vectors.shape != (inputs, dimension):
        raise BuildError(
            f"precomputed vectors have shape {vectors.shape}; {inputs} documents and an "
            f"encoder of {dimension} dimensions need ({inputs}, {dimension})"
        )
    return np.ascontiguousarray(vectors[positions], dtype=np.float32)


def start_build(out: Path, force: bool, kind: str = BUILDING) -> StagingDir:
    """The staging directory of a build of ``out``, after undoing what a crashed build left
    (``kind`` `BUILDING_SHARDS` for a sharded collection).

    Raises `BuildError` when ``out`` exists (without ``force``; with it, when ``out`` is not
    an index, a sharded collection or an empty directory) or cannot be created there,
    `IndexLockedError` when a writer serves it. The swap at the end of the build checks
    ``out`` again (`storage.replace.swap_into_place`); a path that is not valid UTF-8 is a
    `BuildError` before anything is made (tantivy opens its directory by a UTF-8 path).
    """
    if unicode_problem(str(out.absolute())) is not None:  # bytes the command line could not decode
        raise BuildError(
            f"{os.fsencode(out)!r}: not a UTF-8 path; tantivy opens an index only by one"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent directory should be, no permission
        raise BuildError(f"cannot create {out.parent}: {exc.strerror or exc}") from exc
    recover_replacement(out)  # may put an index moved aside by a crashed build back
    if os.path.lexists(out):
        if not force:
            raise BuildError(f"{out} already exists (use --force to replace it)")
        check_replaceable(out)
        check_not_served(out)  # fail before the work, not after it
    try:
        return StagingDir(out, kind, may_replace=force)
    except OSError as exc:  # the parent is not writable (EACCES, EPERM, EROFS)
        raise BuildError(f"cannot create {out}: {exc.strerror or exc}") from exc


def check_source_outside(source: Path, out: Path) -> None:
    """Raise `BuildError` when ``source`` (a corpus, a Lucene index a build reads) is ``out``
    or inside it: replacing ``out`` would delete it. Only an existing ``out`` can hold it."""
    if not os.path.lexists(out):
        return
    resolved, target = source.resolve(), out.resolve()
    if resolved == target or target in resolved.parents:
        where = "is" if resolved == target else "is inside"
        raise BuildError(
            f"{source} {where} {out}: replacing {out} would delete it; keep what a build reads "
            "outside the index directory"
        )
