"""Compaction: rewrite an index without its dead rows, as one atomic commit.

Deleted and replaced documents stay on disk as dead rows (vector rows, journal lines, tantivy
documents) until a compaction writes the live ones into a fresh data directory
``data-<generation>/`` and the manifest switches to it. `IndexWriter.compact` runs it in
three phases, so searches and writes continue meanwhile:

1. **Freeze** (writer lock, instant): take the committed state of generation G — its manifest,
   tantivy reader, vector rows and live mask.
2. **Copy** (no lock; commits continue in the old data directory): every live ordinal of G,
   in ordinal order, gets the next new ordinal ``0..L-1``; its stored document is added to a
   fresh tantivy index under the new ordinal and its vector row copied to the same row of a
   new ``vectors.npy``; ``ids.json`` lists the live ids in that order (renumbered ordinals stay
   row-aligned: tantivy's ordinal fast field = vector row = id-map position). An HNSW index
   gets a new graph over those rows.
3. **Catch up and commit** (writer lock, short): the commits that landed since G are replayed
   onto the new directory: their journal bytes are copied verbatim (they are valid operations
   on G's live set, which the new ``ids.json`` equals), their rows and documents appended
   under new ordinals ``L, L+1, ...``; ordinals dead by now are deleted from the new tantivy
   index; tantivy commits; every file and the directory are fsynced. Then the manifest is
   rewritten to name the new directory, at generation ``current + 1``: the commit point.
   Only then is the old data removed.

An index already compact (no dead row, nothing dead or uncommitted in tantivy, one tantivy
segment, an HNSW graph over every row; in either layout) is left as it is:
the writer checks under both of its locks and commits nothing (`CompactionOutcome.rewritten`).

Crash safety: until the manifest is replaced, the new directory is named by nothing, readers
keep the old generation, and the next writer removes it; after, the old data is named by
nothing and is removed the same way. A reader that was opening the old data when it was
removed sees the manifest change and opens again (`open_index`); a searcher already serving
it keeps its memory maps and open files, which outlive the unlink.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.hnsw import HNSW_FILE, build_hnsw, recorded_params
from hybridsearch.dense.select import DenseIndexKind, parse_dense_index
from hybridsearch.dense.store import write_vector_rows, write_vectors
from hybridsearch.errors import IndexFormatError
from hybridsearch.metadata.columns import MetadataColumns
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.sparse.tantivy_index import SparseReader, SparseWriter
from hybridsearch.storage.files import fsync_dir, fsync_file
from hybridsearch.storage.idmap import PUT, IdMap, JournalEntry, read_journal
from hybridsearch.storage.index_dir import OpenIndex
from hybridsearch.storage.manifest import (
    DATA_DIR_PREFIX,
    IDS_FILE,
    JOURNAL_FILE,
    SPARSE_DIR,
    VECTORS_FILE,
    Manifest,
)

COPY_CHUNK = 4096  # ordinals read from tantivy and the vector file at a time
LEGACY_DATA = (SPARSE_DIR, VECTORS_FILE, IDS_FILE, JOURNAL_FILE, HNSW_FILE)


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """When a background compaction is due: more than ``dead_fraction`` of the rows are dead
    and at least ``min_dead_rows`` of them (so a small index does not churn). A
    ``dead_fraction`` of 0 turns background compaction off."""

    dead_fraction: float = 0.3
    min_dead_rows: int = 1000

    def due(self, manifest: Manifest) -> bool:
        """Whether the index described by ``manifest`` should be compacted now."""
        dead = manifest.deleted_count
        if self.dead_fraction <= 0 or dead < max(1, self.min_dead_rows):
            return False
        return dead > self.dead_fraction * manifest.ordinal_count


@dataclass(frozen=True, slots=True)
class CompactionOutcome:
    """What one compaction did."""

    generation: int  # of the commit that switched to the compacted data
    rows_before: int  # ordinals (vector rows, id-map entries) before, live or not
    rows_after: int
    documents: int  # live documents (unchanged by compaction)
    size_bytes_before: int
    size_bytes_after: int
    seconds: float
    # False: the index was already compact, so nothing was rewritten (`generation` is the
    # current one, unchanged; the sizes are one measurement).
    rewritten: bool = True

    @property
    def removed_rows(self) -> int:
        """Dead rows reclaimed."""
        return self.rows_before - self.rows_after


class StagedGeneration:
    """A new data directory being written; named by no manifest until the writer commits it."""

    def __init__(self, index_dir: Path, name: str, manifest: Manifest) -> None:
        self.name = name
        self.path = index_dir / name
        self._manifest = manifest
        shutil.rmtree(self.path, ignore_errors=True)  # what a crashed attempt left
        self.path.mkdir()
        # One indexing thread: tantivy gives each thread its own segment, so with two the
        # live documents would land in one or two segments as the threads happen to take
        # them (a larger index, and not the merge a compaction is for). One thread fills
        # one segment per `WRITER_HEAP_BYTES` of indexing memory.
        self.sparse = SparseWriter(
            self.path / SPARSE_DIR, create=True, threads=1, metadata=manifest.schema
        )
        self.id_map = IdMap()
        self._dimension = manifest.encoder.dimension if manifest.encoder else 0
        self.journal = b""
        self._metadata: list[tuple[int, Mapping[str, Any]]] = []  # (new ordinal, metadata)

    @property
    def has_vectors(self) -> bool:
        """Whether the index holds a dense matrix."""
        return self._manifest.encoder is not None

    def copy_live(self, frozen: OpenIndex, should_stop: Callable[[], bool]) -> None:
        """Phase 2: the live documents and rows of ``frozen``, renumbered from 0."""
        live = frozen.live if frozen.live is not None else np.ones(len(frozen.ids), np.bool_)
        live_ordinals = np.flatnonzero(live[: frozen.manifest.ordinal_count])
        vectors_path = self.path / VECTORS_FILE
        # The rows are written through a file, never a writable memory map: a page the disk
        # cannot hold is then an ENOSPC error (a storage fault the caller is told of), where
        # through a map the kernel kills the process with SIGBUS.
        out: BinaryIO | None = None
        if self.has_vectors and len(live_ordinals) > 0:
            out = vectors_path.open("wb")
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                "fortran_order": False,
                "shape": (len(live_ordinals), self._dimension),
            }
            np.lib.format.write_array_header_1_0(out, header)
        elif self.has_vectors:
            write_vectors(vectors_path, np.zeros((0, self._dimension), dtype=np.float32))
        try:
            self._copy_rows(frozen, live_ordinals, out, should_stop)
        finally:
            if out is not None:
                out.close()
        wrote_vectors = out is not None
        if wrote_vectors:
            fsync_file(vectors_path)
        if (
            self.has_vectors
            and parse_dense_index(self._manifest.dense_index) is DenseIndexKind.HNSW
        ):
            # Always a graph file, an empty one for no live rows: the HNSW index needs it.
            matrix = (
                np.asarray(np.load(vectors_path, mmap_mode="r"))
                if wrote_vectors
                else np.zeros((0, self._dimension), dtype=np.float32)
            )
            params = recorded_params(self._manifest, frozen.data_path)  # the source's M, efC
            build_hnsw(matrix, self.path / HNSW_FILE, params)
        (self.path / IDS_FILE).write_text(
            json.dumps(self.id_map.ids, ensure_ascii=False), encoding="utf-8"
        )
        fsync_file(self.path / IDS_FILE)

    def _copy_rows(
        self,
        frozen: OpenIndex,
        live_ordinals: NDArray[np.intp],
        out: BinaryIO | None,
        should_stop: Callable[[], bool],
    ) -> None:
        """The live documents into the new tantivy writer and id map, their rows (when
        ``out``) appended to the vector file, a chunk at a time."""
        for chunk_start in range(0, len(live_ordinals), COPY_CHUNK):
            if should_stop():
                raise RuntimeError("the index writer closed during a compaction")
            chunk = live_ordinals[chunk_start : chunk_start + COPY_CHUNK]
            stored = _stored_by_ordinal(frozen.tantivy_reader, int(chunk[0]), int(chunk[-1]) + 1)
            for offset, ordinal in enumerate(chunk.tolist()):
                doc = stored.get(ordinal)
                if doc is None or doc.id != frozen.ids[ordinal]:
                    raise IndexFormatError(
                        f"{frozen.path}: live ordinal {ordinal} is missing from tantivy"
                    )
                self.sparse.add(chunk_start + offset, doc.document())
                self._metadata.append((chunk_start + offset, doc.metadata))
                self.id_map.put(doc.id)
            if out is not None:
                if frozen.vectors is not None:
                    rows = np.ascontiguousarray(frozen.vectors[chunk], dtype=np.float32)
                else:  # (never built so: a manifest with an encoder has vectors)
                    rows = np.zeros((len(chunk), self._dimension), dtype=np.float32)
                out.write(rows.tobytes())

    def catch_up(self, frozen: Manifest, current: OpenIndex) -> None:
        """Phase 3: replay the commits between ``frozen`` and ``current`` (same data dir)."""
        old_data = current.data_path
        entries: Sequence[JournalEntry] = read_journal(
            old_data / JOURNAL_FILE, current.manifest.journal_bytes, frozen.journal_bytes
        )
        new_bytes = current.manifest.journal_bytes - frozen.journal_bytes
        self.journal = b""
        if new_bytes:  # (an index never written since it was built has no journal file)
            with (old_data / JOURNAL_FILE).open("rb") as handle:
                handle.seek(frozen.journal_bytes)
                self.journal = handle.read(new_bytes)
        first_new = frozen.ordinal_count
        added = current.manifest.ordinal_count - first_new
        start = self.id_map.ordinal_count
        stored = _stored_by_ordinal(current.tantivy_reader, first_new, first_new + added)
        for k in range(added):
            doc = stored.get(first_new + k)
            if doc is not None:
                self.sparse.add(start + k, doc.document())
                self._metadata.append((start + k, doc.metadata))
            elif current.is_live(first_new + k):  # a dead one may be purged from tantivy
                raise IndexFormatError(f"{current.path}: ordinal {first_new + k} not in tantivy")
        if added and current.vectors is not None:
            rows = np.ascontiguousarray(current.vectors[first_new : first_new + added])
            write_vector_rows(self.path / VECTORS_FILE, start, rows)
        self.id_map.apply(entries)
        if sum(op == PUT for op, _ in entries) != added:
            raise IndexFormatError(f"{current.path}: journal and rows disagree")
        # Nothing names this directory yet: dead rows may go in the same tantivy commit.
        self.sparse.delete_ordinals(self.id_map.dead_ordinals())
        self.sparse.commit()
        journal_path = self.path / JOURNAL_FILE
        journal_path.write_bytes(self.journal)
        fsync_file(journal_path)
        for directory in (self.path / SPARSE_DIR, self.path):
            fsync_dir(directory)

    @property
    def columns(self) -> MetadataColumns:
        """The metadata columns of the staged generation (after `catch_up`)."""
        schema = self._manifest.schema
        pairs = self._metadata if schema.fields else []
        return MetadataColumns.build(schema, self.id_map.ids, pairs, self.id_map.ordinal_count)

    def discard(self) -> None:
        """Drop the staged directory (the compaction did not commit)."""
        self.sparse.discard()
        shutil.rmtree(self.path, ignore_errors=True)


def _stored_by_ordinal(reader: SparseReader, start: int, stop: int) -> dict[int, StoredDoc]:
    return {doc.ordinal: doc for doc in reader.stored_range(start, stop)}


def remove_unnamed_data(index_dir: Path, manifest: Manifest) -> list[str]:
    """Remove data the manifest does not name: a crashed or finished compaction's leftovers,
    and the temp files of atomic writes a crash interrupted (``.manifest.json.*.tmp`` beside
    the manifest, ``.vectors.npy.*.tmp`` and ``.dense.hnsw.faiss.*.tmp`` beside the data).

    Only the writer calls this (it holds the writer lock, so no write of its own is under way).
    Returns the names removed.
    """
    removed = []
    data = manifest.data_path(index_dir)
    if data != index_dir and data.is_dir():
        for entry in data.iterdir():
            if _is_temp_file(entry):
                entry.unlink(missing_ok=True)
                removed.append(f"{manifest.data_dir}/{entry.name}")
        if removed:
            fsync_dir(data)
    for entry in index_dir.iterdir():
        if _is_temp_file(entry):
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
        elif entry.name.startswith(DATA_DIR_PREFIX) and entry.name != manifest.data_dir:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        elif manifest.data_dir and entry.name in LEGACY_DATA:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    if removed:
        fsync_dir(index_dir)
    return removed


#: tantivy's atomic writes (meta.json, .managed.json) go through a temp file named like this
#: (the tempfile crate's default) beside the target; a crash can leave one behind.
_TANTIVY_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def remove_tantivy_temp_files(sparse_dir: Path) -> list[str]:
    """Remove the temp files of tantivy writes a crash interrupted in ``sparse_dir``.

    Call it only before a tantivy writer opens the directory (the writer lock held): then no
    tantivy write of this index is under way. Returns the names removed.
    """
    removed = []
    if sparse_dir.is_dir():
        for entry in sparse_dir.iterdir():
            if _TANTIVY_TEMP.fullmatch(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        if removed:
            fsync_dir(sparse_dir)
    return removed


def _is_temp_file(entry: Path) -> bool:
    """A temp file of `files.write_bytes_atomic`, `dense.store.write_vectors` or `build_hnsw`."""
    return entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file()
