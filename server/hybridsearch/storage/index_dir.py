"""Opening an index directory: manifest, sparse index (tantivy or Lucene, as the manifest
says), memory-mapped vectors, id map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tantivy
from numpy.typing import NDArray

from hybridsearch.dense.store import open_vector_rows
from hybridsearch.errors import IndexFormatError
from hybridsearch.metadata.columns import MetadataColumns
from hybridsearch.sparse.base import SparseBackend, SparseIndex
from hybridsearch.sparse.lucene_index import Bm25Params, LuceneReader
from hybridsearch.sparse.tantivy_index import SparseReader
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.idmap import IdMap, load_id_map
from hybridsearch.storage.manifest import (
    SPARSE_DIR,
    VECTORS_FILE,
    LuceneInfo,
    Manifest,
    load_manifest,
)
from hybridsearch.types import RankedList


@dataclass(slots=True)
class OpenIndex:
    """A loaded, committed state of an index: both arms row-aligned by internal ordinal.

    ``live[i]`` False marks ordinal ``i`` dead (deleted or replaced); None means all live.
    tantivy may still hold up to ``stale_sparse`` documents that are dead or past the
    committed ordinals (their deletion is applied at a later tantivy commit): the sparse arm
    over-fetches by that many and filters by ``live``. ``columns`` holds the declared
    metadata of every committed ordinal (for filter masks).
    """

    path: Path
    manifest: Manifest
    sparse: SparseIndex  # a SparseReader (tantivy) or a LuceneReader, as the manifest says
    vectors: NDArray[np.float32] | None
    ids: list[str]
    live: NDArray[np.bool_] | None = None
    stale_sparse: int = 0
    columns: MetadataColumns | None = None  # None: read from tantivy (`read_columns`)
    all_live: bool = field(init=False)  # no dead ordinal in ``live`` (a read-only mask)

    def __post_init__(self) -> None:
        self.all_live = self.live is None or bool(self.live.all())
        if self.columns is None:
            self.columns = read_columns(self.manifest, self.sparse, self.ids)

    @property
    def sparse_backend(self) -> SparseBackend:
        """Which library holds the BM25 side."""
        return SparseBackend(self.manifest.sparse_backend)

    @property
    def tantivy_reader(self) -> SparseReader:
        """The tantivy reader of a tantivy-backed index."""
        if not isinstance(self.sparse, SparseReader):
            raise TypeError(f"{self.path} is {self.manifest.sparse_backend}-backed, not tantivy")
        return self.sparse

    @property
    def lucene_reader(self) -> LuceneReader:
        """The Lucene reader of a Lucene-backed index."""
        if not isinstance(self.sparse, LuceneReader):
            raise TypeError(f"{self.path} is {self.manifest.sparse_backend}-backed, not lucene")
        return self.sparse

    @property
    def data_path(self) -> Path:
        """The directory of this state's data files (see `Manifest.data_dir`)."""
        return self.manifest.data_path(self.path)

    @property
    def size_bytes(self) -> int:
        """Bytes on disk."""
        return dir_size_bytes(self.path)

    def is_live(self, ordinal: int, live: NDArray[np.bool_] | None = None) -> bool:
        """Whether ``ordinal`` is a committed, live document (by ``live``, default own mask)."""
        live = self.live if live is None else live
        if live is None:
            return 0 <= ordinal < len(self.ids)
        return 0 <= ordinal < len(live) and bool(live[ordinal])

    def search_sparse(
        self,
        term_weights: Mapping[str, float],
        depth: int,
        live: NDArray[np.bool_] | None = None,
        filter_query: tantivy.Query | None = None,
    ) -> RankedList:
        """The ``depth`` best live documents by BM25 (among ``filter_query``'s, when given:
        then ``live`` is the filter's mask too, see `engine.filtering`).

        tantivy may still hold dead documents (deleted at its next commit): over-fetch by
        ``stale_sparse`` and filter, widening until ``depth`` live hits are found or tantivy
        has no more.
        """
        live = self.live if live is None else live
        sparse = self.tantivy_reader
        if self.stale_sparse == 0 and (live is None or (live is self.live and self.all_live)):
            return sparse.search(term_weights, depth, filter_query)
        limit = depth + self.stale_sparse
        while True:
            hits = sparse.search(term_weights, limit, filter_query)
            live_hits = self._live_only(hits, live)
            if len(live_hits) >= depth or len(hits) < limit:
                return live_hits[:depth]
            limit *= 2

    def search_sparse_text(
        self, text: str, depth: int, live: NDArray[np.bool_] | None = None
    ) -> RankedList:
        """The ``depth`` best live documents by Lucene's BM25 for the query ``text`` (a
        Lucene-backed index; its documents are all live unless ``live`` hides some)."""
        live = self.live if live is None else live
        lucene = self.lucene_reader
        if live is None or (live is self.live and self.all_live):
            return lucene.search_text(text, depth)
        limit = depth
        while True:
            hits = lucene.search_text(text, limit)
            live_hits = self._live_only(hits, live)
            if len(live_hits) >= depth or len(hits) < limit:
                return live_hits[:depth]
            limit *= 2

    def _live_only(self, hits: RankedList, live: NDArray[np.bool_] | None) -> RankedList:
        """The hits whose ordinal `is_live`, in order."""
        ordinals = hits.ordinals
        bound = len(self.ids) if live is None else len(live)
        keep = (ordinals >= 0) & (ordinals < bound)
        if live is not None:
            keep[keep] = live[ordinals[keep]]
        return RankedList(ordinals[keep], hits.scores[keep])


def open_committed(
    path: Path,
    manifest: Manifest,
    sparse: SparseIndex,
    id_map: IdMap,
    stale_sparse: int,
    *,
    columns: MetadataColumns | None = None,
) -> OpenIndex:
    """An `OpenIndex` over the committed state described by ``manifest`` and ``id_map``.

    ``columns``: the state's metadata columns when the caller keeps them up to date (a
    writer); else they are read from tantivy's stored documents.
    """
    vectors = None
    if manifest.encoder is not None:
        vectors = open_vector_rows(
            manifest.data_path(path) / VECTORS_FILE,
            manifest.encoder.dimension,
            manifest.ordinal_count,
        )
    live = id_map.live_mask()
    if int(np.count_nonzero(live)) != manifest.document_count:
        raise IndexFormatError(f"{path}: the id map disagrees with the manifest's document count")
    if columns is None:
        columns = read_columns(manifest, sparse, id_map.ids)
    return OpenIndex(
        path=path,
        manifest=manifest,
        sparse=sparse,
        vectors=vectors,
        ids=id_map.ids,
        live=live,
        stale_sparse=stale_sparse,
        columns=columns,
    )


def read_columns(manifest: Manifest, sparse: SparseIndex, ids: list[str]) -> MetadataColumns:
    """The metadata columns of a committed state, from tantivy's stored documents."""
    rows = manifest.ordinal_count
    if not manifest.schema.fields:
        return MetadataColumns(manifest.schema, ids, rows)
    stored = sparse.stored_range(0, rows)
    # A stale leftover may share an ordinal with the committed document: trust the id map.
    pairs = {d.ordinal: d.metadata for d in stored if d.ordinal < rows and ids[d.ordinal] == d.id}
    return MetadataColumns.build(manifest.schema, ids, sorted(pairs.items()), rows)


def open_index(path: Path, *, attempts: int = 5) -> OpenIndex:
    """Open an index directory read-only, as of its last commit.

    Anything a crashed writer left past the commit point is ignored, not repaired (an
    `IndexWriter` repairs it when it opens). A writer may commit (or compact) while this
    runs: the manifest is read again after the data files are opened, and the open is retried
    when it changed, so the state returned is exactly one commit's (never a mix of two).
    """
    for attempt in range(attempts):
        manifest = load_manifest(path)
        try:
            index = _open_state(path, manifest)
        except (IndexFormatError, OSError):
            # A compaction may have replaced (and removed) the data this manifest named.
            if attempt + 1 < attempts and load_manifest(path) != manifest:
                continue
            raise
        if load_manifest(path) == manifest:
            return index
    raise IndexFormatError(f"{path}: the index kept changing while being opened; retry")


def _open_state(path: Path, manifest: Manifest) -> OpenIndex:
    data = manifest.data_path(path)
    if manifest.lucene is not None:
        return _open_lucene_state(path, manifest, manifest.lucene)
    sparse = SparseReader(data / SPARSE_DIR)
    id_map = load_id_map(data, manifest.ordinal_count, manifest.journal_bytes)
    uncommitted = sparse.count_ordinals_from(manifest.ordinal_count)
    check_sparse_count(data / SPARSE_DIR, manifest, sparse, uncommitted)
    return open_committed(path, manifest, sparse, id_map, manifest.deleted_count + uncommitted)


def check_sparse_count(
    sparse_path: Path, manifest: Manifest, sparse: SparseReader, uncommitted: int
) -> None:
    """`IndexFormatError` when the tantivy index at ``sparse_path`` holds fewer committed
    documents than the manifest's live ones (``uncommitted``: the documents it holds past the
    committed ordinals).

    tantivy holds every live committed document (a commit deletes a document from tantivy only
    a commit after the one that killed it), maybe some dead ones, and what an unfinished commit
    left past the committed ordinals: so fewer than ``document_count`` below them means a
    tantivy index that lost documents or is another's (an empty one in place of a lost
    ``sparse/``, an older copy). The counts are tantivy's metadata and one range query.
    """
    committed = sparse.num_docs - uncommitted
    if committed < manifest.document_count:
        raise IndexFormatError(
            f"the BM25 index at {sparse_path} holds {committed} documents, fewer than the "
            f"{manifest.document_count} the manifest names: the index is damaged or its "
            "sparse/ is another index's; rebuild it or copy it again"
        )


def _open_lucene_state(path: Path, manifest: Manifest, info: LuceneInfo) -> OpenIndex:
    """A Lucene-backed index: its ordinals are the Lucene index's document numbers."""
    data = manifest.data_path(path)
    lucene = LuceneReader(
        info.path(data), Bm25Params(k1=info.k1, b=info.b), segments=info.segments or None
    )
    if lucene.max_doc != manifest.ordinal_count:
        raise IndexFormatError(
            f"{path}: the Lucene index {info.path(data)} holds {lucene.max_doc} documents, the "
            f"manifest {manifest.ordinal_count}; attach it again"
        )
    id_map = load_id_map(data, manifest.ordinal_count, manifest.journal_bytes)
    return open_committed(path, manifest, lucene, id_map, 0)
