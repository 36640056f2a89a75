"""The seam between the engine and a BM25 backend: what every sparse index offers.

Two backends, named by the index manifest (`storage.manifest.Manifest.sparse_backend`):

- ``tantivy`` (`sparse.tantivy_index`): the default; live writes, filters, our analysis.
- ``lucene`` (`sparse.lucene_index`): a Lucene index built by Anserini's indexer (ours or an
  attached Pyserini/Anserini one), searched through Anserini's jar; read-only.

The engine reads stored fields, ids and term statistics through `SparseIndex`; the ranked
search itself differs (tantivy takes our analysed, weighted terms; Lucene takes the query
text and analyses it with Anserini's analyser), so each backend has its own search method.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hybridsearch.types import Document


class SparseBackend(enum.Enum):
    """Which library holds and scores an index's BM25 side."""

    TANTIVY = "tantivy"
    LUCENE = "lucene"


@dataclass(frozen=True, slots=True)
class StoredDoc:
    """A document's stored fields, as read back from the index."""

    id: str
    ordinal: int
    title: str
    text: str
    metadata: Mapping[str, Any]

    def document(self) -> Document:
        """The document as it was ingested (what the BM25 arm indexes is derived from it)."""
        return Document(self.id, self.title, self.text, self.metadata)


class SparseIndex(Protocol):
    """What the engine reads of an open sparse index besides its ranked search."""

    @property
    def num_docs(self) -> int:
        """Live documents."""
        ...

    def doc_freq(self, term: str) -> int:
        """Documents whose body holds the analysed ``term``."""
        ...

    def fetch(self, ordinals: Iterable[int]) -> dict[int, StoredDoc]:
        """Stored fields of the given ordinals (absent ones are left out)."""
        ...

    def ordinals_of_id(self, doc_id: str, limit: int) -> list[int]:
        """Ordinals of up to ``limit`` documents with this external id."""
        ...

    def stored_range(self, start: int, stop: int) -> list[StoredDoc]:
        """Stored fields of every document with ``start <= ordinal < stop``, by ordinal."""
        ...

    def count_ordinals_from(self, start: int) -> int:
        """How many documents have ordinal >= ``start`` (left by an uncommitted write)."""
        ...
