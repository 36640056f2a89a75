"""What PRF reads from one search snapshot: the engine's `PrfBackend` over an open index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tantivy
from numpy.typing import NDArray

from hybridsearch.dense.base import DenseIndex
from hybridsearch.engine.ties import by_score_then_id, cut_by_id, with_ties
from hybridsearch.sparse.base import SparseBackend
from hybridsearch.storage.index_dir import OpenIndex
from hybridsearch.types import PrfSettings, RankedList, ScoredDoc


@dataclass(frozen=True, slots=True)
class IndexPrfBackend:
    """:class:`PrfBackend` over one open index, its dense index and live mask (one snapshot).

    ``with_ties``: second-round lists keep every document tied with the last and come ordered
    by (score, id), as a single-arm ranking must (see `engine.ties`); without, a tie at a
    list's cut is taken by id (`engine.ties.cut_by_id`), as a sharded collection's shards
    take it. ``sparse_filter``: the
    request's filter as a tantivy query (``live`` is then its mask too), so second-round
    searches stay within the filter.
    """

    index: OpenIndex
    dense: DenseIndex | None
    live: NDArray[np.bool_] | None = None
    with_ties: bool = False
    sparse_filter: tantivy.Query | None = None

    def feedback_text(self, ordinals: Sequence[int]) -> dict[int, str]:
        """Title and text as the BM25 field indexes them."""
        stored = self.index.sparse.fetch(ordinals)
        return {
            ordinal: f"{doc.title}\n{doc.text}" if doc.title else doc.text
            for ordinal, doc in stored.items()
        }

    def doc_vectors(self, ordinals: Sequence[int]) -> NDArray[np.float32]:
        """Rows of the index's vector matrix."""
        assert self.index.vectors is not None
        rows: NDArray[np.float32] = np.asarray(
            self.index.vectors[np.asarray(ordinals, dtype=np.int64)], dtype=np.float32
        )
        return rows

    def doc_freq(self, term: str) -> int:
        """tantivy's document frequency of the term in the body field."""
        return self.index.sparse.doc_freq(term)

    @property
    def num_docs(self) -> int:
        """Live documents of the tantivy searcher."""
        return self.index.sparse.num_docs

    def search_sparse(self, term_weights: Mapping[str, float], depth: int) -> Sequence[ScoredDoc]:
        """BM25 with the weighted (expanded) query."""
        index, live, sparse_filter = self.index, self.live, self.sparse_filter

        def search(n: int) -> RankedList:
            return index.search_sparse(term_weights, n, live, sparse_filter)

        if not self.with_ties:
            return cut_by_id(search, depth, self.index.ids.__getitem__)
        return by_score_then_id(with_ties(search, depth), self.index.ids.__getitem__)

    def native_rm3(
        self, query_text: str, settings: PrfSettings, depth: int
    ) -> tuple[Sequence[ScoredDoc], dict[str, float]] | None:
        """Anserini's RM3 on a Lucene-backed index (None on tantivy: `prf.rm3` runs). Its
        documents are all live and it takes no filter, so no row is hidden."""
        if self.index.sparse_backend is not SparseBackend.LUCENE:
            return None
        lucene = self.index.lucene_reader
        expansion: dict[str, float] = {}

        def search(n: int) -> RankedList:
            hits, terms = lucene.rm3_search(
                query_text,
                n,
                fb_terms=settings.fb_terms,
                fb_docs=settings.fb_docs,
                original_query_weight=settings.original_query_weight,
            )
            expansion.update(terms)
            return hits

        if not self.with_ties:
            return search(depth), expansion
        hits = with_ties(search, depth)
        return by_score_then_id(hits, self.index.ids.__getitem__), expansion

    def search_dense(self, vector: NDArray[np.float32], depth: int) -> Sequence[ScoredDoc]:
        """Exact inner product with the new query vector, live rows only."""
        dense = self.dense
        assert dense is not None
        queries = vector.reshape(1, -1)

        def search(n: int) -> Sequence[ScoredDoc]:
            return dense.search(queries, n, self.live)[0]

        if not self.with_ties:
            return cut_by_id(search, depth, self.index.ids.__getitem__)
        return by_score_then_id(with_ties(search, depth), self.index.ids.__getitem__)
