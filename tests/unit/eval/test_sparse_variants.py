"""The in-memory BM25 of the sparse variant experiments."""

from __future__ import annotations

import pytest

from hybridsearch.eval.sparse_variants import Bm25Corpus, Bm25Variant
from hybridsearch.types import Document

DOCS = [
    Document("a", "wing flutter", "the flutter of a wing at high speed"),
    Document("b", "", "the the the the boundary layer"),
    Document("c", "boundary layer", "laminar boundary layer transition"),
]
BASE = Bm25Variant("base")


@pytest.fixture(scope="module")
def corpus() -> Bm25Corpus:
    return Bm25Corpus(DOCS)


def test_ranks_by_bm25(corpus: Bm25Corpus) -> None:
    ranked = corpus.ranked(BASE, "boundary layer", 10)
    assert [corpus.ids[o] for o in ranked.ordinals] == ["c", "b"]
    assert ranked.scores[0] > ranked.scores[1] > 0


def test_query_stopwords_drop_only_the_query_terms(corpus: Bm25Corpus) -> None:
    plain = corpus.ranked(BASE, "the wing", 10)
    assert {corpus.ids[o] for o in plain.ordinals} == {"a", "b"}
    stopped = corpus.ranked(Bm25Variant("q", query_stopwords=True), "the wing", 10)
    assert [corpus.ids[o] for o in stopped.ordinals] == ["a"]


def test_title_weight_favours_title_matches(corpus: Bm25Corpus) -> None:
    heavy = Bm25Variant("t", title_weight=3.0)
    scores = corpus.scores(heavy, "boundary")
    plain = corpus.scores(BASE, "boundary")
    assert scores[2] / scores[1] > plain[2] / plain[1]


def test_rescoring_keeps_the_candidates(corpus: Bm25Corpus) -> None:
    candidates = corpus.ranked(BASE, "boundary layer", 10)
    again = corpus.rescored(Bm25Variant("k", k1=0.9, b=0.4), "boundary layer", candidates)
    assert sorted(again.ordinals.tolist()) == sorted(candidates.ordinals.tolist())
