"""Pagination in the engine: pages of a query, concatenated, are one big request's hits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from hybridsearch.engine.request import (
    FusionOptions,
    HighlightOptions,
    Limits,
    PrfOptions,
    QueryDefaults,
    SearchRequestSpec,
    resolve_query,
)
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import (
    Document,
    FusionMethod,
    Query,
    RetrievalMode,
    SearchResult,
    StoredField,
    VectorPrfMethod,
)
from tests.fakes import HashEncoder, build_fake_index

# Many documents share "flow"; some are exact copies (equal BM25 scores and equal vectors),
# their ids running against their ordinals, so the arms' own tie order (by ordinal) differs
# from the ranking's (by id) and a page boundary falls inside each group of copies.
DOCS = [
    *(Document(f"z{i:02d}", "Copy", "flow over a plate") for i in range(7)),
    *(
        Document(f"d{i:02d}", f"Doc {i}", " ".join(["flow"] * (1 + i % 4) + ["word"] * i))
        for i in range(20)
    ),
    *(Document(f"a{i:02d}", "Copy", "flow over a plate") for i in range(7)),
    Document("x00", "Unrelated", "pasta and bread"),
]
TOTAL = 32
PAGE = 4


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HybridSearcher]:
    path = build_fake_index(tmp_path_factory.mktemp("paging") / "idx", DOCS)
    engine = HybridSearcher(open_index(path), HashEncoder())
    yield engine
    engine.close()


def resolve(spec: SearchRequestSpec) -> Query:
    return resolve_query(spec, QueryDefaults(), Limits())


def ranked_ids(result: SearchResult) -> list[tuple[int, str]]:
    return [(hit.rank, hit.id) for hit in result.hits]


SPECS = {
    "sparse": SearchRequestSpec("flow plate", mode=RetrievalMode.SPARSE),
    "dense": SearchRequestSpec("flow plate", mode=RetrievalMode.DENSE),
    "interpolation": SearchRequestSpec("flow plate", fusion=FusionOptions(sparse_depth=40)),
    "rrf": SearchRequestSpec(
        "flow plate", fusion=FusionOptions(method=FusionMethod.RRF, dense_depth=35)
    ),
    "sparse_rm3": SearchRequestSpec(
        "flow plate", mode=RetrievalMode.SPARSE, prf=PrfOptions(rm3=True, fb_docs=3)
    ),
    "dense_rocchio": SearchRequestSpec(
        "flow plate",
        mode=RetrievalMode.DENSE,
        prf=PrfOptions(vector_method=VectorPrfMethod.ROCCHIO, vector_depth=6),
    ),
    "hybrid_prf": SearchRequestSpec(
        "flow plate",
        prf=PrfOptions(rm3=True, vector_method=VectorPrfMethod.AVERAGE, fb_docs=2),
    ),
}


@pytest.mark.parametrize("name", SPECS)
def test_pages_concatenate_to_the_full_ranking(searcher: HybridSearcher, name: str) -> None:
    spec = SPECS[name]
    full = searcher.search(resolve(dataclasses.replace(spec, top_k=TOTAL)))
    assert len(full.hits) == TOTAL  # the corpus has more matches than one page
    pages = [
        searcher.search(resolve(dataclasses.replace(spec, top_k=PAGE, offset=offset)))
        for offset in range(0, TOTAL, PAGE)
    ]
    paged = [pair for page in pages for pair in ranked_ids(page)]
    assert paged == ranked_ids(full)
    assert [hit.rank for hit in pages[1].hits] == [5, 6, 7, 8]
    assert pages[2].applied.offset == 2 * PAGE
    # Scores agree too, not only ids.
    assert [h.score for p in pages for h in p.hits] == [h.score for h in full.hits]


def test_equal_scores_are_ordered_by_id_across_page_boundaries(searcher: HybridSearcher) -> None:
    spec = SearchRequestSpec("flow plate", mode=RetrievalMode.SPARSE, top_k=PAGE)
    pages = [
        searcher.search(resolve(dataclasses.replace(spec, offset=offset))) for offset in (0, 4, 8)
    ]
    hits = [hit for page in pages for hit in page.hits]
    copies = [hit.id for hit in hits if hit.id[0] in "az"]
    # The 14 copies tie: the first 12 ranks are theirs, ordered by id (a.. before z..),
    # although tantivy and the dense index order them by ordinal (z.. first).
    assert copies == sorted(copies)
    assert len(copies) == 12
    assert len({hit.score for hit in hits}) == 1


def test_search_batch_and_progressive_pages(searcher: HybridSearcher) -> None:
    spec = SearchRequestSpec("flow plate", top_k=PAGE, offset=PAGE)
    query = resolve(spec)
    alone = searcher.search(query)
    batch = searcher.search_batch([resolve(dataclasses.replace(spec, offset=0)), query])
    assert ranked_ids(batch[1]) == ranked_ids(alone)
    partials: list[SearchResult] = []
    final = searcher.search_progressive(query, partials.append)
    assert ranked_ids(final) == ranked_ids(alone)
    sparse_page = searcher.search(
        resolve(dataclasses.replace(spec, mode=RetrievalMode.SPARSE, fusion=FusionOptions()))
    )
    (partial,) = partials
    assert [hit.rank for hit in partial.hits] == [5, 6, 7, 8]
    assert {hit.id for hit in partial.hits} == {hit.id for hit in sparse_page.hits}


def test_a_page_past_the_last_hit_is_empty(searcher: HybridSearcher) -> None:
    spec = SearchRequestSpec("pasta", mode=RetrievalMode.SPARSE, top_k=5, offset=5)
    assert searcher.search(resolve(spec)).hits == []


def test_highlights_come_with_fields_not_asked_for(searcher: HybridSearcher) -> None:
    spec = SearchRequestSpec(
        "flowing plates",
        mode=RetrievalMode.SPARSE,
        top_k=1,
        highlight=HighlightOptions(enabled=True),
    )
    (hit,) = searcher.search(resolve(spec)).hits
    assert hit.title is None and hit.text is None  # return_fields asked for nothing
    (text,) = hit.highlights  # the title "Copy" has no query term
    assert text.field is StoredField.TEXT
    assert text.snippet == "flow over a plate"
    assert [text.snippet[s:e] for s, e in text.matches] == ["flow", "plate"]


def test_no_highlights_unless_asked(searcher: HybridSearcher) -> None:
    spec = SearchRequestSpec("flow", top_k=3, return_fields=(StoredField.TEXT,))
    assert all(hit.highlights == () for hit in searcher.search(resolve(spec)).hits)


def test_rm3_highlights_only_the_query_terms(searcher: HybridSearcher) -> None:
    spec = SearchRequestSpec(
        "words",
        mode=RetrievalMode.SPARSE,
        top_k=3,
        prf=PrfOptions(rm3=True, fb_docs=3, fb_terms=5),
        explain=True,
        highlight=HighlightOptions(enabled=True),
    )
    result = searcher.search(resolve(spec))
    assert len(result.expansion_terms) > 1  # the expansion holds more than the query
    for hit in result.hits:
        (text,) = hit.highlights
        assert {text.snippet[s:e] for s, e in text.matches} == {"word"}


def test_ties_by_id_sorts_only_the_tied_runs() -> None:
    from hybridsearch.engine.ties import ties_by_id
    from hybridsearch.types import RankedList

    ids = {0: "d", 1: "b", 2: "a", 3: "c", 4: "e"}
    hits = RankedList([0, 1, 2, 3, 4], [3.0, 2.0, 2.0, 2.0, 1.0])
    ordered = ties_by_id(hits, ids.__getitem__)
    assert ordered.ordinals.tolist() == [0, 2, 1, 3, 4]
    assert ordered.scores.tolist() == [3.0, 2.0, 2.0, 2.0, 1.0]
    assert ties_by_id(RankedList([4, 0], [2.0, 1.0]), ids.__getitem__).ordinals.tolist() == [4, 0]


def test_ties_by_id_looks_up_only_tied_entries_and_keeps_runs_apart() -> None:
    from hybridsearch.engine.ties import ties_by_id
    from hybridsearch.types import RankedList

    # Two tied runs (2.0 and 1.0) around untied entries; ids would reorder across runs if the
    # runs were not kept apart.
    ids = {0: "z", 1: "y", 2: "x", 3: "w", 4: "a", 5: "m", 6: "b", 7: "c"}
    looked_up: list[int] = []

    def doc_id(ordinal: int) -> str:
        looked_up.append(ordinal)
        return ids[ordinal]

    hits = RankedList([0, 1, 2, 3, 4, 5, 6, 7], [5.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.5])
    ordered = ties_by_id(hits, doc_id)
    assert ordered.ordinals.tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    assert ordered.scores.tolist() == [5.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.5]
    assert sorted(looked_up) == [1, 2, 4, 5, 6]  # the untied entries' ids are never needed
