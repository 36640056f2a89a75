"""BM25 variants for experiments: a small in-memory BM25 over a corpus with knobs tantivy's
arm does not have (stopwords, k1/b, title weight), to measure what each would do before
changing the index.

Analysis is the arm's own (`sparse.analysis.analyze`: simple tokenizer, lowercase, English
Snowball stemmer) on title and text separately. Scoring is Robertson's BM25 with tantivy's and
Lucene's IDF, ``log(1 + (N - n + 0.5) / (n + 0.5))``, and a simple BM25F for the title weight:
``tf = w * tf_title + tf_text`` and ``dl = w * len_title + len_text`` (one k1 and b). Document
lengths are exact (tantivy stores them rounded to one byte, so the baseline differs from the
arm's list in a few ties and near-ties).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hybridsearch.sparse.analysis import analyze, terms_without_stopwords
from hybridsearch.types import Document, RankedList


@dataclass(frozen=True, slots=True)
class Bm25Variant:
    """One BM25 configuration."""

    name: str
    k1: float = 1.2
    b: float = 0.75
    title_weight: float = 1.0
    stopwords: bool = False  # drop Lucene's stopwords from documents (lengths) and queries
    query_stopwords: bool = False  # drop them from queries only (the index unchanged)
    # Query terms in more than this share of the documents are dropped too (query side),
    # unless no term would be left.
    max_df: float = 1.0


@dataclass(frozen=True, slots=True)
class _Postings:
    docs: NDArray[np.int64]
    tf_title: NDArray[np.float64]
    tf_text: NDArray[np.float64]


class Bm25Corpus:
    """Term statistics of a corpus, by field, for scoring any `Bm25Variant`."""

    def __init__(self, docs: Iterable[Document]) -> None:
        self.ids: list[str] = []
        postings: dict[str, tuple[list[int], list[float], list[float]]] = {}
        len_title, len_text, stop_title, stop_text = [], [], [], []
        for ordinal, doc in enumerate(docs):
            self.ids.append(doc.id)
            title, text = Counter(analyze(doc.title)), Counter(analyze(doc.text))
            len_title.append(sum(title.values()))
            len_text.append(sum(text.values()))
            # Tokens whose word (before stemming) is a stopword, as Lucene's filter drops them.
            stop_title.append(len_title[-1] - len(terms_without_stopwords(doc.title)))
            stop_text.append(len_text[-1] - len(terms_without_stopwords(doc.text)))
            for term in title.keys() | text.keys():
                entry = postings.setdefault(term, ([], [], []))
                entry[0].append(ordinal)
                entry[1].append(float(title.get(term, 0)))
                entry[2].append(float(text.get(term, 0)))
        self.postings = {
            t: _Postings(np.array(d, dtype=np.int64), np.array(a), np.array(x))
            for t, (d, a, x) in postings.items()
        }
        self.len_title = np.array(len_title, dtype=np.float64)
        self.len_text = np.array(len_text, dtype=np.float64)
        self.stop_title = np.array(stop_title, dtype=np.float64)
        self.stop_text = np.array(stop_text, dtype=np.float64)

    def _lengths(self, variant: Bm25Variant) -> NDArray[np.float64]:
        title, text = self.len_title, self.len_text
        if variant.stopwords:
            title, text = title - self.stop_title, text - self.stop_text
        lengths: NDArray[np.float64] = variant.title_weight * title + text
        return lengths

    def scores(self, variant: Bm25Variant, query: str) -> NDArray[np.float64]:
        """Every document's BM25 score for ``query`` (0 where no term matches)."""
        lengths = self._lengths(variant)
        norm = variant.k1 * (1 - variant.b + variant.b * lengths / lengths.mean())
        n = len(self.ids)
        out = np.zeros(n)
        drop = variant.stopwords or variant.query_stopwords
        counts = Counter(analyze(query))
        kept = dict(Counter(terms_without_stopwords(query))) if drop else dict(counts)
        if variant.max_df < 1.0:
            common = {t for t in kept if self.doc_freq(t) > variant.max_df * n}
            kept = {t: c for t, c in kept.items() if t not in common} or kept
        for term, count in (kept or counts).items():
            p = self.postings.get(term)
            if p is None:
                continue
            idf = np.log1p((n - len(p.docs) + 0.5) / (len(p.docs) + 0.5))
            tf = variant.title_weight * p.tf_title + p.tf_text
            out[p.docs] += count * idf * tf * (variant.k1 + 1) / (tf + norm[p.docs])
        return out

    def doc_freq(self, term: str) -> int:
        """How many documents hold ``term``."""
        p = self.postings.get(term)
        return 0 if p is None else len(p.docs)

    def ranked(self, variant: Bm25Variant, query: str, depth: int) -> RankedList:
        """The ``depth`` best documents with a positive score, best first (ties by id)."""
        scores = self.scores(variant, query)
        hits = np.flatnonzero(scores > 0)
        names = np.array([self.ids[i] for i in hits])
        order = np.lexsort((names, -scores[hits]))[:depth]
        return RankedList(hits[order], scores[hits][order])

    def rescored(self, variant: Bm25Variant, query: str, candidates: RankedList) -> RankedList:
        """``candidates`` (another BM25's list) re-scored under ``variant``, best first: what
        a server could do to its arm's top list at query time, the index unchanged."""
        scores = self.scores(variant, query)[candidates.ordinals]
        names = np.array([self.ids[int(i)] for i in candidates.ordinals])
        order = np.lexsort((names, -scores))
        return RankedList(candidates.ordinals[order], scores[order])


def remap(ranked: RankedList, ids: list[str], position: Mapping[str, int]) -> RankedList:
    """A list over this corpus's ordinals as one over an index whose ordinal of id is
    ``position[id]``."""
    return RankedList(np.array([position[ids[int(o)]] for o in ranked.ordinals]), ranked.scores)
