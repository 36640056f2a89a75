"""Live writes to an index directory: crash-safe commits of upserts and deletes.

Commit protocol (one writer at a time, under a lock; the manifest is the commit point):

1. tantivy: queue the deletion of every ordinal >= the committed ordinal count (what a crashed
   or failed earlier commit may have left), and of the ordinals that died in earlier commits;
   then add the new documents under fresh ordinals.
2. Vectors: write the new rows after the committed rows of ``vectors.npy``; fsync.
3. Journal: write the ``put``/``del`` lines after the committed bytes of ``journal.jsonl``;
   fsync.
4. tantivy commit.
5. Rewrite ``manifest.json`` atomically (new ordinal count, journal length, generation). Only
   now is the batch committed; callers acknowledge it after this returns.

A crash before step 5 leaves the previous manifest, which names only committed rows, bytes and
ordinals: readers ignore the rest, and the next commit overwrites or deletes it (steps 1-3).
Ordinals that die in a commit (replaced or deleted ids) are deleted from tantivy only at the
*next* commit: deleting them in the same tantivy commit could lose a committed document if the
manifest write then failed. Until then the sparse arm filters them out with the live mask.

The data files live in the directory the manifest names (`Manifest.data_path`); `compact`
moves them to a new one (see `hybridsearch.storage.compaction`). The writer lock is an flock
on ``writer.lock`` (`WriterLock`), held from open to close.

A failed commit (a full disk, an I/O error) is rolled back in memory: the writer stays usable,
and its error is a `StorageFullError` / `StorageUnavailableError` (`storage.faults`). A
manifest write that fails after its rename (the directory fsync) is a commit as far as the disk
says: the writer takes it, so that it and the disk agree, but the caller gets
`StorageUnavailableError` saying so: a batch not known durable is never acknowledged (a power
loss could still undo the rename), and resending it is harmless (writes by id). Its
generation number is never reused, so a follower that saw a manifest whose write reported a
failure never takes a later commit for one it already serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.dense.hnsw import HNSW_FILE, graph_rows
from hybridsearch.dense.select import DenseIndexKind, parse_dense_index
from hybridsearch.dense.store import write_vector_rows
from hybridsearch.errors import IndexFormatError, IndexLockedError, StorageUnavailableError
from hybridsearch.metadata.values import metadata_problem
from hybridsearch.sparse.tantivy_index import SparseReader, SparseWriter
from hybridsearch.storage.builder import utc_now
from hybridsearch.storage.compaction import (
    CompactionOutcome,
    StagedGeneration,
    remove_tantivy_temp_files,
    remove_unnamed_data,
)
from hybridsearch.storage.faults import storage_error
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.idmap import DELETE, PUT, JournalEntry, load_id_map, write_journal
from hybridsearch.storage.index_dir import (
    OpenIndex,
    check_sparse_count,
    open_committed,
    read_columns,
)
from hybridsearch.storage.lock import WriterLock
from hybridsearch.storage.manifest import (
    GENERATIONS_FORMAT_VERSION,
    JOURNAL_FILE,
    SPARSE_DIR,
    VECTORS_FILE,
    Manifest,
    data_dir_name,
    format_version_for,
    load_manifest,
)
from hybridsearch.types import Document

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    """What one committed upsert batch did."""

    accepted: int
    replaced: int
    generation: int


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What one committed delete did."""

    deleted: list[str]
    not_found: list[str]
    generation: int


class IndexWriter:
    """The single writer of an index directory; every method is thread-safe (one lock).

    It knows nothing of searching: whoever writes (`engine.ingest.Ingestor`) opens the new
    committed state with `committed` and publishes it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._dir_lock = WriterLock(path)
        try:
            self._open(load_manifest(path))
        except BaseException:
            self._dir_lock.release()
            raise
        self._closed = False

    def _open(self, manifest: Manifest) -> None:
        path = self.path
        if manifest.lucene is not None:
            raise IndexFormatError(
                f"{path} is Lucene-backed and read-only: rebuild or re-attach it to change it"
            )
        removed = remove_unnamed_data(path, manifest)
        data = manifest.data_path(path)
        removed += [f"{SPARSE_DIR}/{name}" for name in remove_tantivy_temp_files(data / SPARSE_DIR)]
        if removed:
            log.info("%s: removed data no commit names: %s", path, ", ".join(removed))
        self._manifest = manifest
        self._last_generation = manifest.generation  # the highest ever written (or tried)
        self._id_map = load_id_map(data, manifest.ordinal_count, manifest.journal_bytes)
        try:
            self._sparse_writer: SparseWriter | None = SparseWriter(
                data / SPARSE_DIR, create=False, metadata=manifest.schema
            )
        except ValueError as exc:
            if "LockBusy" not in str(exc):
                raise
            raise IndexLockedError(f"{path} is being written by another process") from None
        self._reader = SparseReader(data / SPARSE_DIR)
        uncommitted = self._reader.count_ordinals_from(manifest.ordinal_count)
        check_sparse_count(data / SPARSE_DIR, manifest, self._reader, uncommitted)
        # The committed metadata columns, extended by each commit (as the vector rows are).
        self._columns = read_columns(manifest, self._reader, self._id_map.ids)
        # Unknown which dead ordinals an earlier run already deleted from tantivy: all of them.
        self._sparse_deletes: list[int] = self._id_map.dead_ordinals()
        self._stale = len(self._sparse_deletes) + uncommitted
        if self._stale > len(self._sparse_deletes):
            log.info(
                "%s: ignoring %d uncommitted sparse documents (removed at the next commit)",
                path,
                self._stale - len(self._sparse_deletes),
            )

    @property
    def data_path(self) -> Path:
        """The directory of the committed data files."""
        return self._manifest.data_path(self.path)

    @property
    def manifest(self) -> Manifest:
        """The manifest of the last commit."""
        return self._manifest

    def committed(self) -> OpenIndex:
        """The last committed state, opened for searching."""
        with self._lock:
            return self._open_state()

    def _open_state(self) -> OpenIndex:
        return open_committed(
            self.path,
            self._manifest,
            self._reader.refreshed(),
            self._id_map,
            self._stale,
            columns=self._columns,
        )

    def upsert(
        self, docs: Sequence[Document], vectors: NDArray[np.float32] | None
    ) -> UpsertOutcome:
        """Commit ``docs`` (row ``i`` of ``vectors`` is the vector of ``docs[i]``) as one batch.

        Ids must be unique within the batch. An existing id is replaced in both arms. Declared
        metadata must fit the schema (`metadata.values.metadata_problem`, checked first by
        whoever takes documents in), else ValueError and nothing is committed.
        """
        if not docs:
            return UpsertOutcome(0, 0, self._manifest.generation)
        if len({d.id for d in docs}) != len(docs):
            raise ValueError("document ids must be unique within a batch")
        has_vectors = self._manifest.encoder is not None
        if has_vectors != (vectors is not None):
            raise ValueError("vectors must be given exactly when the index has them")
        if vectors is not None and vectors.shape[0] != len(docs):
            raise ValueError(f"{len(docs)} documents but {vectors.shape[0]} vectors")
        for doc in docs:
            problem = metadata_problem(self._manifest.schema, doc.metadata)
            if problem is not None:
                raise ValueError(f"document {doc.id!r}: {problem}")
        with self._lock:
            self._check_open()
            replaced = sum(1 for d in docs if self._id_map.ordinal_of(d.id) is not None)
            start = self._id_map.ordinal_count
            entries: list[JournalEntry] = [(PUT, d.id) for d in docs]
            self._commit(entries, docs, vectors, start)
            return UpsertOutcome(len(docs), replaced, self._manifest.generation)

    def delete(self, ids: Sequence[str]) -> DeleteOutcome:
        """Commit the deletion of ``ids``; ids that are not live are reported as not found."""
        with self._lock:
            self._check_open()
            deleted: list[str] = []
            not_found: list[str] = []
            for doc_id in dict.fromkeys(ids):
                live = self._id_map.ordinal_of(doc_id) is not None
                (deleted if live else not_found).append(doc_id)
            if deleted:
                entries = [(DELETE, doc_id) for doc_id in deleted]
                self._commit(entries, [], None, self._id_map.ordinal_count)
            return DeleteOutcome(deleted, not_found, self._manifest.generation)

    def _commit(
        self,
        entries: list[JournalEntry],
        docs: Sequence[Document],
        vectors: NDArray[np.float32] | None,
        start: int,
    ) -> None:
        manifest = self._manifest
        # Ordinals that die in this commit: replaced or deleted ids (ids are unique per batch).
        died = [o for _, doc_id in entries if (o := self._id_map.ordinal_of(doc_id)) is not None]
        data = self.data_path
        generation = self._last_generation + 1
        saving: Manifest | None = None
        unconfirmed: BaseException | None = None
        try:
            writer = self._sparse()
            writer.delete_ordinals_from(start)
            writer.delete_ordinals(self._sparse_deletes)
            for offset, doc in enumerate(docs):
                writer.add(start + offset, doc)
            if vectors is not None:
                write_vector_rows(data / VECTORS_FILE, start, vectors)
            journal_bytes = write_journal(data / JOURNAL_FILE, manifest.journal_bytes, entries)
            writer.commit()
            live_count = self._id_map.live_count - len(died) + sum(op == PUT for op, _ in entries)
            now = utc_now()
            committed = replace(
                manifest,
                format_version=format_version_for(manifest.data_dir),
                document_count=live_count,
                ordinal_count=start + len(docs),
                journal_bytes=journal_bytes,
                generation=generation,
                committed_at=now,
            )
            columns = self._columns.extended(
                ((start + k, doc.metadata) for k, doc in enumerate(docs)), start + len(docs)
            )
            self._last_generation = generation  # burnt even if the manifest write fails
            saving = committed
            committed.save(self.path)
        except BaseException as exc:
            # The rename may have happened before a failed directory fsync: trust the disk,
            # or the next commit would cut rows the manifest on disk names.
            if saving is None or not self._manifest_on_disk_is(saving):
                # Drop queued tantivy changes; whatever reached disk is past the commit point.
                self._rollback_sparse()
                translated = storage_error(exc, "the commit", self.path)
                if translated is not None:
                    raise translated from exc
                raise
            log.warning(
                "%s: commit %d written, but not confirmed durable (%s)",
                self.path,
                generation,
                exc,
            )
            unconfirmed = exc
        self._manifest = committed
        self._id_map.apply(entries)
        self._columns = columns
        self._sparse_deletes = died
        self._stale = len(died)
        if unconfirmed is not None:
            raise StorageUnavailableError(
                "the commit was written but its sync to disk failed, so it is not known durable "
                "and not acknowledged: it shows once a later commit does (or after a restart), "
                "unless a power loss undoes it first; resend the batch (writes by id repeat "
                "safely)"
            ) from unconfirmed

    def _rollback_sparse(self) -> None:
        """Drop tantivy's queued changes; reopen its writer if a failed write killed it.

        The dead writer holds tantivy's directory lock, so it goes first; when the reopen
        fails too (the disk still refuses), the writer stays closed and the next commit tries
        again (`_sparse`), so one failure never outlives the fault.
        """
        writer = self._sparse_writer
        if writer is None:
            return
        try:
            writer.rollback()
        except ValueError:
            log.warning("%s: the tantivy writer died in a failed commit; reopening it", self.path)
            writer.discard()
            self._sparse_writer = None
            try:
                self._sparse()
            except Exception as exc:  # the commit's own error is the one raised
                log.warning("%s: cannot reopen the tantivy writer yet: %s", self.path, exc)

    def _sparse(self) -> SparseWriter:
        """The tantivy writer, reopened (with the collection's schema) if it was dropped."""
        if self._sparse_writer is None:
            self._sparse_writer = SparseWriter(
                self.data_path / SPARSE_DIR, create=False, metadata=self._manifest.schema
            )
        return self._sparse_writer

    def compact(self) -> CompactionOutcome:
        """Rewrite the index without its dead rows, as one commit (see `storage.compaction`).

        Commits may run meanwhile (only the first and last steps take the commit lock); they
        are carried over into the compacted generation. On failure nothing changes.

        An index that is already compact (`_is_compact`) is left as it is: the outcome says
        ``rewritten=False``, at the current generation. A commit that lands after that check
        waits for the next compaction.
        """
        with self._compact_lock:
            started = time.perf_counter()
            covered = self._graph_rows()  # only a compaction rewrites the graph: no commit lock
            with self._lock:
                self._check_open()
                if self._is_compact(covered):
                    return self._left_as_it_is(self._manifest, started)
                frozen = self._open_state()
            # Newer than the current data directory's name (a generation at or before this one).
            name = data_dir_name(frozen.manifest.generation + 1)
            size_before = dir_size_bytes(self.path)
            staged: StagedGeneration | None = None
            try:
                staged = StagedGeneration(self.path, name, frozen.manifest)
                staged.copy_live(frozen, lambda: self._closed)
                with self._lock:
                    self._check_open()
                    current = self._open_state()
                    staged.catch_up(frozen.manifest, current)
                    committed = self._commit_compaction(staged, current.manifest)
            except BaseException as exc:
                if staged is not None:
                    staged.discard()  # never committed: `_commit_compaction` raised before
                translated = storage_error(exc, "the compaction", self.path)
                if translated is not None:
                    raise translated from exc
                raise
            return CompactionOutcome(
                generation=committed.generation,
                rows_before=current.manifest.ordinal_count,
                rows_after=committed.ordinal_count,
                documents=committed.document_count,
                size_bytes_before=size_before,
                size_bytes_after=dir_size_bytes(self.path),
                seconds=time.perf_counter() - started,
            )

    def _graph_rows(self) -> int | None:
        """The rows the HNSW graph covers; None when the index has no graph (exact, or no
        vectors); -1 when the graph cannot be read (a compaction writes a new one)."""
        manifest = self._manifest
        if not manifest.has_vectors:
            return None
        if parse_dense_index(manifest.dense_index) is not DenseIndexKind.HNSW:
            return None
        try:
            return graph_rows(self.data_path / HNSW_FILE)
        except (OSError, IndexFormatError):
            return -1

    def _is_compact(self, covered: int | None) -> bool:
        """Whether a compaction would only copy what is there: no row is dead, tantivy holds
        nothing dead or uncommitted, the HNSW graph (if any) covers every row, and tantivy
        has one segment (none when empty). A built index's layout (its data beside the
        manifest, format 2) is no reason: it is read and written as well as the
        ``data-<generation>/`` one. Call it holding both locks (``covered``: `_graph_rows`)."""
        manifest = self._manifest
        return (
            manifest.deleted_count == 0
            and self._stale == 0
            and (covered is None or covered == manifest.ordinal_count)
            and self._reader.refreshed().num_segments <= 1
        )

    def _left_as_it_is(self, manifest: Manifest, started: float) -> CompactionOutcome:
        """The outcome of a compaction of an index that was already compact."""
        size = dir_size_bytes(self.path)
        log.info(
            "%s: already compact (%d rows, all live); nothing rewritten",
            self.path,
            manifest.ordinal_count,
        )
        return CompactionOutcome(
            generation=manifest.generation,
            rows_before=manifest.ordinal_count,
            rows_after=manifest.ordinal_count,
            documents=manifest.document_count,
            size_bytes_before=size,
            size_bytes_after=size,
            seconds=time.perf_counter() - started,
            rewritten=False,
        )

    def _commit_compaction(self, staged: StagedGeneration, current: Manifest) -> Manifest:
        """Write the manifest naming ``staged`` (the commit point), then switch to it."""
        self._last_generation += 1
        committed = replace(
            current,
            format_version=GENERATIONS_FORMAT_VERSION,
            document_count=staged.id_map.live_count,
            ordinal_count=staged.id_map.ordinal_count,
            journal_bytes=len(staged.journal),
            generation=self._last_generation,
            committed_at=utc_now(),
            data_dir=staged.name,
        )
        if committed.document_count != current.document_count:
            raise RuntimeError("compaction changed the live document count")  # a bug: abort
        reader = SparseReader(staged.path / SPARSE_DIR)
        try:
            committed.save(self.path)
        except BaseException:
            # The rename may have happened before a failed directory fsync: trust the disk.
            if not self._manifest_on_disk_is(committed):
                raise
            log.warning("%s: compaction committed, but not confirmed durable", self.path)
        # Committed: from here on nothing may fail, or the writer would disagree with the disk.
        old_writer = self._sparse_writer
        self._manifest = committed
        self._id_map = staged.id_map
        self._sparse_writer = staged.sparse
        self._reader = reader
        self._columns = staged.columns
        self._sparse_deletes = []
        self._stale = 0
        if old_writer is not None:
            old_writer.discard()
        try:
            removed = remove_unnamed_data(self.path, committed)
        except OSError as exc:  # the next writer's open retries
            log.warning("%s: cannot remove the old data yet (%s)", self.path, exc)
            removed = []
        log.info("%s: compacted into %s (removed %s)", self.path, staged.name, ", ".join(removed))
        return committed

    def _manifest_on_disk_is(self, manifest: Manifest) -> bool:
        try:
            return load_manifest(self.path) == manifest
        except IndexFormatError:
            return False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the index writer is closed")

    def close(self) -> None:
        """Wait for tantivy's merges; release the directory."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._sparse_writer is not None:
                    self._sparse_writer.close()
                self._dir_lock.release()
