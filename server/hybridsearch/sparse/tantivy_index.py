"""The tantivy side of an index: schema, bulk/live writer, and BM25 reader.

Schema: ``id`` (raw, stored; for lookup and delete), ``ordinal`` (u64, indexed, fast, stored:
the row of the document's vector in the dense matrix), ``body`` (title + text, ``en_stem``,
freqs only: BM25 needs no positions), ``stored`` (a JSON blob of title, text, metadata), and a
field per declared metadata field of the collection schema (`sparse.filter_query`), which
filters search. BM25 is tantivy's: k1 = 1.2, b = 0.75.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import tantivy

from hybridsearch.errors import IndexFormatError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.metadata.values import typed_metadata
from hybridsearch.sparse.analysis import INDEX_TOKENIZER
from hybridsearch.sparse.base import StoredDoc
from hybridsearch.sparse.filter_query import add_metadata_fields, add_metadata_values, filtered
from hybridsearch.sparse.query_builder import BODY_FIELD, build_bm25_query
from hybridsearch.storage.files import ordinary_permissions
from hybridsearch.types import Document, RankedList

ID_FIELD = "id"
ORDINAL_FIELD = "ordinal"
STORED_FIELD = "stored"
WRITER_HEAP_BYTES = 128 * 1024 * 1024
#: The file that makes a directory a tantivy index (its segments and schema).
TANTIVY_META_FILE = "meta.json"
#: The files tantivy replaces through its own temp files (created 0600).
TANTIVY_META_FILES = (TANTIVY_META_FILE, ".managed.json")


def build_schema(metadata: CollectionSchema | None = None) -> tantivy.Schema:
    """The schema of a hybridsearch tantivy index with these declared metadata fields."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(ID_FIELD, stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field(ORDINAL_FIELD, stored=True, indexed=True, fast=True)
    builder.add_text_field(
        BODY_FIELD, stored=False, tokenizer_name=INDEX_TOKENIZER, index_option="freq"
    )
    builder.add_bytes_field(STORED_FIELD, stored=True)
    add_metadata_fields(builder, metadata or CollectionSchema())
    return builder.build()


def indexed_body(doc: Document) -> str:
    """The text the BM25 arm indexes: title and text as one field."""
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def _encode_stored(doc: Document) -> bytes:
    blob = {"title": doc.title, "text": doc.text, "metadata": dict(doc.metadata)}
    return json.dumps(blob, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def require_tantivy_index(path: Path) -> None:
    """`IndexFormatError` unless ``path`` holds a tantivy index (its ``meta.json``).

    An index directory whose ``sparse/`` is missing or incomplete (a partial copy, a lost
    file) is damaged: serving it would answer every BM25 query with nothing.
    """
    if not (path / TANTIVY_META_FILE).is_file():
        raise IndexFormatError(
            f"no BM25 index at {path} (its tantivy meta.json is missing): the index is "
            "incomplete or damaged; rebuild it or copy it again"
        )


class SparseWriter:
    """The one writer of a tantivy directory (tantivy allows one per directory)."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool,
        threads: int = 0,
        metadata: CollectionSchema | None = None,
    ) -> None:
        """``create``: start a new, empty index in ``path`` (made when missing); else open
        the one there, and `IndexFormatError` when there is none (never an empty one made in
        its place). ``metadata``: the collection's declared fields (the same every time a
        directory is opened: the manifest records them)."""
        if create:
            path.mkdir(parents=True, exist_ok=True)
        else:
            require_tantivy_index(path)
        self._path = path
        self._metadata = metadata or CollectionSchema()
        self._schema = build_schema(self._metadata)
        self._index = _writable_index(self._schema, path, create=create)
        self._writer = self._index.writer(WRITER_HEAP_BYTES, threads)

    def add(self, ordinal: int, doc: Document) -> None:
        """Queue one document (visible after `commit`); its declared metadata must fit the
        schema (`metadata.values.metadata_problem`), else `MetadataValueError`."""
        tdoc = tantivy.Document()
        tdoc.add_text(ID_FIELD, doc.id)
        tdoc.add_unsigned(ORDINAL_FIELD, ordinal)
        tdoc.add_text(BODY_FIELD, indexed_body(doc))
        tdoc.add_bytes(STORED_FIELD, _encode_stored(doc))
        if self._metadata.fields:
            add_metadata_values(tdoc, self._metadata, typed_metadata(self._metadata, doc.metadata))
        self._writer.add_document(tdoc)

    def delete_ordinals(self, ordinals: Sequence[int]) -> None:
        """Queue the deletion of the documents with these ordinals (added before this call)."""
        if ordinals:
            # (delete_documents_by_term does not match u64 terms given as Python ints)
            query = tantivy.Query.term_set_query(self._schema, ORDINAL_FIELD, list(ordinals))
            self._writer.delete_documents_by_query(query)

    def delete_ordinals_from(self, start: int) -> None:
        """Queue the deletion of every document with ordinal >= ``start`` added before this call.

        tantivy applies a delete only to documents added before it, so documents added after
        it in the same commit survive.
        """
        self._writer.delete_documents_by_query(_ordinals_from(self._schema, start))

    def commit(self) -> None:
        """Make queued changes durable and visible to newly opened readers."""
        self._writer.commit()
        self._open_up()

    def _open_up(self) -> None:
        """tantivy writes its meta files through 0600 temp files: give them ordinary
        permissions, so a server running as another user can read the index (a background
        merge rewrites them; `close`, after the merges, does this again)."""
        for name in TANTIVY_META_FILES:
            ordinary_permissions(self._path / name)

    def rollback(self) -> None:
        """Drop every change queued since the last commit."""
        self._writer.rollback()

    def close(self) -> None:
        """Wait for background merges and release the directory lock."""
        self._writer.wait_merging_threads()
        self._open_up()

    def discard(self) -> None:
        """Drop the writer without committing: its directory lock is released."""
        self._writer = None  # type: ignore[assignment]


def _writable_index(schema: tantivy.Schema, path: Path, *, create: bool) -> tantivy.Index:
    """A new tantivy index in ``path``, or (not ``create``) the one there: a damaged one (a
    lost segment file, another schema) is an `IndexFormatError`."""
    if create:
        return tantivy.Index(schema, path=str(path), reuse=False)
    try:
        return tantivy.Index(schema, path=str(path), reuse=True)
    except ValueError as exc:
        raise IndexFormatError(f"cannot open the BM25 index at {path}: {exc}") from exc


class SparseReader:
    """BM25 search and stored-field access over one tantivy directory."""

    def __init__(self, path: Path) -> None:
        require_tantivy_index(path)
        try:
            self._index = tantivy.Index.open(str(path))
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"cannot open the BM25 index at {path}: {exc}") from exc
        self._schema = self._index.schema
        self._searcher = self._index.searcher()

    def reload(self) -> None:
        """Pick up the latest commit (a searcher shows the data as of when it was taken)."""
        self._index.reload()
        self._searcher = self._index.searcher()

    def refreshed(self) -> SparseReader:
        """A new reader over the latest commit; this one keeps showing what it showed."""
        self._index.reload()
        clone = object.__new__(SparseReader)
        clone._index = self._index
        clone._schema = self._schema
        clone._searcher = self._index.searcher()
        return clone

    def count_ordinals_from(self, start: int) -> int:
        """How many documents have ordinal >= ``start`` (left by an uncommitted write)."""
        result = self._searcher.search(_ordinals_from(self._schema, start), limit=1, count=True)
        n: int = result.count  # type: ignore[attr-defined]
        return n

    @property
    def num_docs(self) -> int:
        """Live documents in the current searcher."""
        n: int = self._searcher.num_docs
        return n

    @property
    def num_segments(self) -> int:
        """Segments in the current searcher (none for an empty index)."""
        n: int = self._searcher.num_segments
        return n

    def doc_freq(self, term: str) -> int:
        """Documents whose body holds the analysed ``term`` (deleted ones count until merged)."""
        n: int = self._searcher.doc_freq(BODY_FIELD, term)
        return n

    @property
    def tantivy_schema(self) -> tantivy.Schema:
        """The schema of the open index (for compiling filters)."""
        return self._schema

    def search(
        self,
        term_weights: Mapping[str, float],
        depth: int,
        filter_query: tantivy.Query | None = None,
    ) -> RankedList:
        """The ``depth`` best documents by BM25 for weighted analysed terms, among those
        ``filter_query`` matches when given (`sparse.filter_query`; scores unchanged)."""
        if not term_weights or depth <= 0:
            return RankedList([], [])
        query = build_bm25_query(self._schema, term_weights)
        if filter_query is not None:
            query = filtered(query, filter_query)
        searcher = self._searcher
        hits = searcher.search(query, limit=depth, count=False).hits
        if not hits:
            return RankedList([], [])
        scores, addresses = zip(*hits, strict=True)
        values = searcher.fast_field_values(ORDINAL_FIELD, list(addresses))
        if None in values:  # every indexed document has one; be safe with foreign indexes
            kept = [i for i, v in enumerate(values) if v is not None]
            values, scores = [values[i] for i in kept], tuple(scores[i] for i in kept)
        ordinals = cast("list[int]", values)  # u64 fast field values: ints
        return RankedList(ordinals, scores)

    def matching_ordinals(self, query: tantivy.Query) -> list[int]:
        """Ordinals of every document ``query`` matches (dead or uncommitted ones included)."""
        searcher = self._searcher
        limit = max(1, searcher.num_docs + 1)
        hits = searcher.search(query, limit=limit, count=False).hits
        values = searcher.fast_field_values(ORDINAL_FIELD, [addr for _, addr in hits])
        return sorted(int(v) for v in values if v is not None)

    def fetch(self, ordinals: Iterable[int]) -> dict[int, StoredDoc]:
        """Stored fields of the given ordinals (absent ordinals are left out)."""
        searcher = self._searcher
        found: dict[int, StoredDoc] = {}
        for ordinal in ordinals:
            query = tantivy.Query.term_query(self._schema, ORDINAL_FIELD, ordinal)
            hits = searcher.search(query, limit=1, count=False).hits
            if hits:
                found[ordinal] = _stored_doc(searcher.doc(hits[0][1]))
        return found

    def stored_range(self, start: int, stop: int) -> list[StoredDoc]:
        """Stored fields of every document with ``start <= ordinal < stop``, by ordinal (dead
        ones included: tantivy may still hold them)."""
        if stop <= start:
            return []
        query = tantivy.Query.range_query(
            self._schema,
            ORDINAL_FIELD,
            tantivy.FieldType.Unsigned,
            start,
            stop - 1,
        )
        searcher = self._searcher
        # Twice the range: an uncommitted leftover may share an ordinal until it is deleted.
        hits = searcher.search(query, limit=2 * (stop - start), count=False).hits
        docs = [_stored_doc(searcher.doc(address)) for _, address in hits]
        return sorted(docs, key=lambda d: d.ordinal)

    def fetch_by_id(self, doc_id: str) -> StoredDoc | None:
        """Stored fields of the first document with this external id, if any (dead or not)."""
        query = tantivy.Query.term_query(self._schema, ID_FIELD, doc_id)
        hits = self._searcher.search(query, limit=1, count=False).hits
        return _stored_doc(self._searcher.doc(hits[0][1])) if hits else None

    def ordinals_of_id(self, doc_id: str, limit: int) -> list[int]:
        """Ordinals of up to ``limit`` documents with this external id (live or not)."""
        query = tantivy.Query.term_query(self._schema, ID_FIELD, doc_id)
        searcher = self._searcher
        hits = searcher.search(query, limit=limit, count=False).hits
        if not hits:
            return []
        ordinals = searcher.fast_field_values(ORDINAL_FIELD, [addr for _, addr in hits])
        return [int(o) for o in ordinals if o is not None]


def _ordinals_from(schema: tantivy.Schema, start: int) -> tantivy.Query:
    return tantivy.Query.range_query(schema, ORDINAL_FIELD, tantivy.FieldType.Unsigned, start, None)


def _stored_doc(tdoc: Any) -> StoredDoc:
    blob = json.loads(bytes(tdoc.get_first(STORED_FIELD)).decode("utf-8"))
    return StoredDoc(
        id=str(tdoc.get_first(ID_FIELD)),
        ordinal=int(tdoc.get_first(ORDINAL_FIELD)),
        title=str(blob.get("title", "")),
        text=str(blob.get("text", "")),
        metadata=blob.get("metadata") or {},
    )
