"""The sharded front over shards in this process (`LocalShardGroup`) against `HybridSearcher`
on the same documents unsharded: with one shard every kind of query answers exactly alike
(fusion, explain, filters, pages, PRF, progressive, batches); with three the dense arm still
does (BM25 then uses each shard's own statistics); writes route to the owning shard."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hybridsearch.api.collection_convert import description_to_proto
from hybridsearch.cli import collections as collections_cli
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.registry import CollectionCounts, CollectionRegistry
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import InvalidArgumentError, UnavailableError
from hybridsearch.metadata.filter import Filter, Match
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.sharding.build_local import build_sharded
from hybridsearch.sharding.group import FanOut, LocalShardGroup, missing_shards_message
from hybridsearch.sharding.layout import (
    ShardManifest,
    load_shard_manifest,
    shard_dir_name,
    shard_of,
)
from hybridsearch.sharding.searcher import ShardedPrfBackend, ShardedSearcher, ShardedWriter
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import load_manifest
from hybridsearch.types import (
    Document,
    FusionMethod,
    FusionSettings,
    HighlightSettings,
    Hit,
    PrfSettings,
    PrfStage,
    Query,
    RetrievalMode,
    SearchResult,
    StoredField,
    VectorPrfMethod,
)
from tests.fakes import HASH_ENCODER_INFO, HashEncoder, build_fake_index

SCHEMA = CollectionSchema((MetadataField("topic", MetadataType.KEYWORD),))
WORDS = [
    "flow",
    "plate",
    "shock",
    "wave",
    "boundary",
    "layer",
    "heat",
    "hypersonic",
    "wing",
    "flutter",
    "shell",
    "buckling",
]
DOCS = [
    Document(
        f"doc-{i:03d}",
        f"title {WORDS[i % 7]}",
        " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 2 + i % 6)),
        {"topic": "aero" if i % 3 else "solid"},
    )
    for i in range(90)
]


def _build(root: Path, shards: int) -> Path:
    out = root / f"sharded-{shards}"
    build_sharded(
        DOCS,
        out,
        shards,
        encoder=HashEncoder(),
        encoder_info=HASH_ENCODER_INFO,
        schema=SCHEMA,
    )
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HybridSearcher]:
    path = build_fake_index(tmp_path_factory.mktemp("single") / "index", DOCS, schema=SCHEMA)
    engine = HybridSearcher(open_index(path), HashEncoder())
    yield engine
    engine.close()


def _sharded(path: Path, group: type[LocalShardGroup] = LocalShardGroup) -> ShardedSearcher:
    manifest = load_shard_manifest(path)
    return ShardedSearcher(group(path, manifest), manifest, HashEncoder())


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedSearcher]:
    engine = _sharded(_build(tmp_path_factory.mktemp("one"), 1))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedSearcher]:
    engine = _sharded(_build(tmp_path_factory.mktemp("three"), 3))
    yield engine
    engine.close()


def answer(result: SearchResult) -> list[tuple[object, ...]]:
    return [
        (h.id, round(h.score, 9), h.rank, h.title, h.text, h.explanation, h.highlights)
        for h in result.hits
    ]


#: float32 products of unit vectors: how a matrix product rounds depends on its shape (and
#: on the CPU's BLAS kernels), so three shards' scores may differ from one index's in the
#: last bits (seen on Intel Xeon, not on AMD EPYC).
ROUNDING = 1e-6


def same_dense_answer(many: SearchResult, one: SearchResult) -> None:
    """Assert the hits are one index's, scores to within ``ROUNDING``: the same ranks, the
    same documents with the same stored fields, in the same order but for neighbours whose
    scores tie to within it (and, at a page's edge, documents tied with the edge)."""
    assert [h.rank for h in many.hits] == [h.rank for h in one.hits]
    for x, y in zip(many.hits, one.hits, strict=True):
        assert x.score == pytest.approx(y.score, abs=ROUNDING)  # swapped: tied neighbours
    theirs = {h.id: h for h in one.hits}
    mine = {h.id: h for h in many.hits}
    for doc_id in mine.keys() & theirs.keys():
        hit, their_hit = mine[doc_id], theirs[doc_id]
        assert hit.score == pytest.approx(their_hit.score, abs=ROUNDING)
        assert stored_and_explained(hit) == stored_and_explained(their_hit)
    edges = [h.score for h in (*one.hits[:1], *one.hits[-1:])]
    for doc_id in mine.keys() ^ theirs.keys():  # in one page only: tied at its edge
        score = (mine.get(doc_id) or theirs[doc_id]).score
        assert any(abs(score - edge) <= ROUNDING for edge in edges), doc_id


def stored_and_explained(h: Hit) -> tuple[object, ...]:
    return (h.title, h.text, h.explanation, h.highlights)


QUERIES = [
    Query("flow plate", top_k=10),
    Query("shock wave boundary", top_k=5, explain=True, offset=3),
    Query("heat hypersonic", mode=RetrievalMode.SPARSE, top_k=20, offset=2),
    Query("wing flutter", mode=RetrievalMode.DENSE, top_k=30),
    Query("layer shell", fusion=FusionSettings(method=FusionMethod.RRF), explain=True),
    Query(
        "boundary flow",
        filter=Filter(must=(Match("topic", ("solid",)),)),
        return_fields=frozenset({StoredField.TITLE, StoredField.TEXT}),
        highlight=HighlightSettings(),
    ),
    Query("plate shock", prf=PrfSettings(rm3=True, fb_docs=5, fb_terms=5), explain=True),
    Query("hypersonic wing", prf=PrfSettings(vector_method=VectorPrfMethod.ROCCHIO)),
    Query("flow", mode=RetrievalMode.SPARSE, prf=PrfSettings(rm3=True), top_k=15),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.text)
def test_one_shard_answers_as_one_index(
    single: HybridSearcher, one_shard: ShardedSearcher, query: Query
) -> None:
    expected = single.search(query)
    got = one_shard.search(query)
    assert answer(got) == answer(expected)
    assert got.expansion_terms == expected.expansion_terms
    assert got.applied == expected.applied and got.missing_shards == ()


def test_batches_and_progressive_match(single: HybridSearcher, one_shard: ShardedSearcher) -> None:
    # A batch's dense scores come from one matrix product (float32 sums in another order).
    batch = one_shard.search_batch(QUERIES)
    expected = single.search_batch(QUERIES)

    def ranked(results: list[SearchResult]) -> list[list[tuple[str, float]]]:
        return [[(h.id, round(h.score, 5)) for h in r.hits] for r in results]

    assert ranked(batch) == ranked(expected)
    partial_single: list[SearchResult] = []
    partial_sharded: list[SearchResult] = []
    final_single = single.search_progressive(QUERIES[0], partial_single.append)
    final_sharded = one_shard.search_progressive(QUERIES[0], partial_sharded.append)
    assert answer(final_sharded) == answer(final_single)
    assert [answer(r) for r in partial_sharded] == [answer(r) for r in partial_single]
    assert partial_sharded[0].applied.mode is RetrievalMode.SPARSE


@pytest.mark.parametrize("text", ["flow plate", "shock wave", "shell buckling wing"])
def test_three_shards_dense_ranking_is_the_unsharded_one(
    single: HybridSearcher, three_shards: ShardedSearcher, text: str
) -> None:
    query = Query(text, mode=RetrievalMode.DENSE, top_k=len(DOCS))
    same_dense_answer(three_shards.search(query), single.search(query))
    paged = dataclasses.replace(query, top_k=7, offset=11)
    same_dense_answer(three_shards.search(paged), single.search(paged))


def test_three_shards_hybrid_holds_every_document_once(three_shards: ShardedSearcher) -> None:
    result = three_shards.search(Query("flow", top_k=len(DOCS)))
    assert sorted(h.id for h in result.hits) == sorted(d.id for d in DOCS)


def test_a_filter_on_an_undeclared_field_names_its_path(three_shards: ShardedSearcher) -> None:
    bad = Query("flow", filter=Filter(must=(Match("colour", ("red",)),)))
    with pytest.raises(InvalidArgumentError) as caught:
        three_shards.search_batch([QUERIES[0], bad])
    assert caught.value.violations[0].field.startswith("requests[1].filter")


def test_writes_go_to_the_owning_shard(tmp_path: Path) -> None:
    path = _build(tmp_path, 3)
    engine = _sharded(path)
    writer = ShardedWriter(engine)
    try:
        before = writer.manifest.generation
        new = [Document("new-1", "", "supersonic inlet"), Document("doc-004", "", "replaced")]
        outcome = writer.upsert(new)
        assert (outcome.accepted, outcome.replaced) == (2, 1)
        assert outcome.generation > before
        for doc in new:
            shard = path / shard_dir_name(shard_of(doc.id, 3))
            assert doc.id in engine.group.call(shard_of(doc.id, 3), "fetch", [doc.id])
            assert shard.is_dir()
        stored = engine.document("doc-004")
        assert stored is not None and stored.text == "replaced"
        hits = engine.search(Query("supersonic inlet", mode=RetrievalMode.SPARSE)).hits
        assert hits[0].id == "new-1"
        deleted = writer.delete(["new-1", "missing"])
        assert (deleted.deleted, deleted.not_found) == (["new-1"], ["missing"])
        assert engine.document("new-1") is None
        assert writer.manifest.document_count == len(DOCS)
    finally:
        engine.close()


def test_collection_bm25_statistics_score_as_one_index(tmp_path: Path) -> None:
    # Every document four terms long: each shard's average length is the collection's, so
    # with the collection's document frequencies BM25 scores are exactly one index's.
    docs = [
        Document(
            f"e{i:02d}", "", " ".join(WORDS[(i + k * (1 + i % 3)) % len(WORDS)] for k in range(4))
        )
        for i in range(40)
    ]
    single = build_fake_index(tmp_path / "single", docs)
    out = tmp_path / "sharded"
    build_sharded(docs, out, 3, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO)
    manifest = load_shard_manifest(out)
    group = LocalShardGroup(out, manifest)
    shard_stats = ShardedSearcher(group, manifest, HashEncoder(), bm25_statistics="shard")
    collection_stats = ShardedSearcher(group, manifest, HashEncoder())  # the default
    engine = HybridSearcher(open_index(single), HashEncoder())
    try:
        query = Query("flutter hypersonic shell", mode=RetrievalMode.SPARSE, top_k=40)

        def scored(result: SearchResult) -> list[tuple[float, str]]:  # ties: float rounding
            return sorted((-round(h.score, 5), h.id) for h in result.hits)

        expected = scored(engine.search(query))
        got = scored(collection_stats.search(query))
        own = scored(shard_stats.search(query))
        assert got == expected
        assert own != expected  # each shard's idf differs from the collection's
    finally:
        engine.close()
        shard_stats.close()


class SignallingGroup(LocalShardGroup):
    """The in-process shards, setting ``asked`` when the front asks them for arms."""

    def __init__(self, root: Path, manifest: ShardManifest) -> None:
        super().__init__(root, manifest)
        self.asked = threading.Event()

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        self.asked.set()
        return super().fan_out(method, args_of, allow_partial=allow_partial, shards=shards)


class WaitingEncoder(HashEncoder):
    """Encodes a query only once the shards have been asked (or after 5 s)."""

    def __init__(self, asked: threading.Event) -> None:
        super().__init__()
        self.asked = asked
        self.waited_out = False

    def encode_queries(self, texts: Sequence[str]) -> Any:
        self.waited_out |= not self.asked.wait(timeout=5)
        return super().encode_queries(texts)


def test_in_process_shards_run_bm25_while_the_query_is_encoded(
    tmp_path: Path, single: HybridSearcher
) -> None:
    path = _build(tmp_path, 2)
    manifest = load_shard_manifest(path)
    group = SignallingGroup(path, manifest)
    encoder = WaitingEncoder(group.asked)
    engine, plain = ShardedSearcher(group, manifest, encoder), _sharded(path)
    try:
        query = Query("shock wave boundary", top_k=5, explain=True)
        result = engine.search(query)
        assert not encoder.waited_out  # the shards were asked before the vector was ready
        assert answer(result) == answer(plain.search(query))
    finally:
        engine.close()
        plain.close()


class CountingGroup(LocalShardGroup):
    """The in-process shards, counting the round trips the front makes (one per fan-out or
    call: with shards on Ray, the calls of a fan-out run at once)."""

    def __init__(self, root: Path, manifest: ShardManifest) -> None:
        super().__init__(root, manifest)
        self.trips: Counter[str] = Counter()

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        self.trips[method] += 1
        return super().fan_out(method, args_of, allow_partial=allow_partial, shards=shards)

    def call(self, shard: int, method: str, *args: Any) -> Any:
        self.trips[method] += 1
        return super().call(shard, method, *args)


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedSearcher]:
    path = _build(tmp_path_factory.mktemp("counted"), 3)
    manifest = load_shard_manifest(path)
    engine = ShardedSearcher(
        CountingGroup(path, manifest), manifest, HashEncoder(), bm25_statistics="shard"
    )
    yield engine
    engine.close()


def _trips(engine: ShardedSearcher, query: Query) -> tuple[SearchResult, dict[str, int]]:
    group = engine.group
    assert isinstance(group, CountingGroup)
    group.trips.clear()
    result = engine.search(query)
    return result, dict(group.trips)


def test_a_hybrid_page_with_stored_fields_is_one_round_trip(
    single: HybridSearcher, counted: ShardedSearcher
) -> None:
    fields = frozenset({StoredField.TITLE, StoredField.TEXT, StoredField.METADATA})
    by_id = {d.id: d for d in DOCS}
    for query in [
        Query("flow plate", top_k=10, return_fields=fields),
        Query("shock wave", top_k=5, offset=4, return_fields=fields, highlight=HighlightSettings()),
        Query("heat wing", mode=RetrievalMode.SPARSE, top_k=8, return_fields=fields),
        Query("wing flutter", fusion=FusionSettings(method=FusionMethod.RRF), return_fields=fields),
    ]:
        result, trips = _trips(counted, query)
        assert trips == {"arms": 1}, query.text  # candidates and stored fields together
        assert result.hits
        for hit in result.hits:
            doc = by_id[hit.id]
            assert (hit.title, hit.text, hit.metadata) == (doc.title, doc.text, doc.metadata)
        # The page without stored fields: the same hits; highlights as one index marks them
        # (they depend on the stored text and the query only).
        bare = counted.search(dataclasses.replace(query, return_fields=frozenset(), highlight=None))
        assert [(h.id, h.score, h.rank) for h in result.hits] == [
            (h.id, h.score, h.rank) for h in bare.hits
        ]
        if query.highlight is not None:
            unsharded = {h.id: h.highlights for h in single.search(query).hits}
            shown = [h for h in result.hits if h.id in unsharded]
            assert shown and all(h.highlights == unsharded[h.id] for h in shown)
            assert any(h.highlights for h in shown)


def test_no_stored_fields_no_fetch(counted: ShardedSearcher) -> None:
    _, trips = _trips(counted, Query("flow plate", top_k=10, explain=True))
    assert trips == {"arms": 1}


def test_stored_fields_past_the_prefetch_are_fetched(
    single: HybridSearcher, counted: ShardedSearcher
) -> None:
    # With PRF the page is the second round's: its stored fields are fetched after it.
    query = Query(
        "hypersonic wing",
        prf=PrfSettings(vector_method=VectorPrfMethod.ROCCHIO),
        return_fields=frozenset({StoredField.TEXT}),
    )
    result, trips = _trips(counted, query)
    assert trips.get("fetch") == 1
    by_id = {d.id: d for d in DOCS}
    assert result.hits and all(h.text == by_id[h.id].text for h in result.hits)


def _equal_length_docs() -> list[Document]:
    # Every document four terms long: each shard's average length is the collection's, so
    # with the collection's document frequencies BM25 scores are exactly one index's.
    return [
        Document(
            f"e{i:02d}", "", " ".join(WORDS[(i + k * (1 + i % 3)) % len(WORDS)] for k in range(4))
        )
        for i in range(40)
    ]


def _scored(result: SearchResult) -> list[tuple[float, str]]:  # ties: float rounding
    return sorted((-round(h.score, 5), h.id) for h in result.hits)


def test_collection_statistics_are_cached_until_a_shard_commits(tmp_path: Path) -> None:
    docs = _equal_length_docs()
    out = tmp_path / "sharded"
    build_sharded(docs, out, 3, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO)
    manifest = load_shard_manifest(out)
    group = CountingGroup(out, manifest)
    engine = ShardedSearcher(group, manifest, HashEncoder(), bm25_statistics="collection")
    try:
        query = Query("flutter hypersonic shell", mode=RetrievalMode.SPARSE, top_k=40)
        first, cold = _trips(engine, query)
        assert cold == {"term_stats_at": 1, "arms": 1}
        again, warm = _trips(engine, query)
        assert warm == {"arms": 1}  # steady state: no call for the statistics
        assert _scored(again) == _scored(first)
        _, trips = _trips(engine, Query("shell flutter", top_k=10))
        assert trips == {"arms": 1}  # terms already cached
        # A write on one shard: its answer shows a new generation; the arms are asked
        # again with the new sums, and the scores are those of a front with no cache.
        ShardedWriter(engine).upsert([Document("new", "", "flutter flutter wing plate")])
        after, trips = _trips(engine, query)
        assert trips == {"arms": 2}
        cold_front = ShardedSearcher(group, manifest, HashEncoder(), bm25_statistics="collection")
        assert _scored(after) == _scored(cold_front.search(query))
        assert _scored(after) != _scored(first)
        _, trips = _trips(engine, query)
        assert trips == {"arms": 1}
    finally:
        engine.close()


class ElsewhereGroup(CountingGroup):
    """In-process shards that the front must treat as shards in other processes (as on
    Ray): no request may carry what cannot leave this process. Counts round trips."""

    in_process = False

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        args = args_of(0)
        requests = []
        if method == "arms":
            requests = args[0]
        elif method == "search":
            requests = [request for _, request in args[0]]
        assert all(r.vector_of is None for r in requests)
        return super().fan_out(method, args_of, allow_partial=allow_partial, shards=shards)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedSearcher]:
    engine = _sharded(_build(tmp_path_factory.mktemp("elsewhere"), 1), ElsewhereGroup)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def three_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShardedSearcher]:
    engine = _sharded(_build(tmp_path_factory.mktemp("three-elsewhere"), 3), ElsewhereGroup)
    yield engine
    engine.close()


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.text)
def test_shards_elsewhere_answer_as_one_index(
    single: HybridSearcher, elsewhere: ShardedSearcher, query: Query
) -> None:
    assert answer(elsewhere.search(query)) == answer(single.search(query))
    batch = elsewhere.search_batch([query, QUERIES[0]])
    assert [answer(r) for r in batch] == [
        answer(single.search(query)),
        answer(single.search(QUERIES[0])),
    ]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.text)
def test_one_shard_elsewhere_answers_in_one_round_trip(
    elsewhere: ShardedSearcher, query: Query
) -> None:
    # Nothing to merge: the shard finishes the query (PRF, stored fields and all) itself.
    with_fields = dataclasses.replace(
        query, return_fields=frozenset({StoredField.TITLE, StoredField.TEXT})
    )
    result, trips = _trips(elsewhere, with_fields)
    assert trips == {"search": 1}
    assert result.hits and all(h.text is not None for h in result.hits)
    assert result.timings.total_us >= result.timings.sparse_us + result.timings.dense_us
    if query.mode is not RetrievalMode.SPARSE:
        assert result.timings.encode_us > 0


def test_several_shards_elsewhere_send_their_candidates(
    single: HybridSearcher, three_elsewhere: ShardedSearcher
) -> None:
    query = Query("wing flutter", mode=RetrievalMode.DENSE, top_k=len(DOCS))
    result, trips = _trips(three_elsewhere, query)
    assert trips == {"arms": 1}
    same_dense_answer(result, single.search(query))


class DownGroup(LocalShardGroup):
    """The in-process shards, those in ``down`` without a live replica: missing when the
    caller allows a partial answer, UNAVAILABLE otherwise (as `RayShardGroup` answers while
    Ray restarts them)."""

    down: frozenset[int] = frozenset()
    methods: tuple[str, ...] = ()  # every fan-out's method, in order

    def fan_out(
        self,
        method: str,
        args_of: Callable[[int], tuple[Any, ...]],
        *,
        allow_partial: bool,
        shards: Sequence[int] | None = None,
    ) -> FanOut:
        self.methods = (*self.methods, method)
        missing = tuple(sorted(self.down))
        if missing and not allow_partial:
            raise UnavailableError(missing_shards_message(missing))
        numbers = range(self.shard_count) if shards is None else shards
        up = [s for s in numbers if s not in self.down]
        fan = super().fan_out(method, args_of, allow_partial=allow_partial, shards=up)
        return FanOut(fan.results, missing)

    def call(self, shard: int, method: str, *args: Any) -> Any:
        if shard in self.down:
            raise UnavailableError(missing_shards_message((shard,)))
        return super().call(shard, method, *args)

    def write(self, shard: int, method: str, *args: Any) -> Any:
        if shard in self.down:
            raise UnavailableError(missing_shards_message((shard,)))
        return super().write(shard, method, *args)


def test_a_listing_counts_the_shards_that_answer(tmp_path: Path) -> None:
    path = _build(tmp_path, 3)
    manifest = load_shard_manifest(path)
    group = DownGroup(path, manifest)
    engine = ShardedSearcher(group, manifest, HashEncoder())
    registry = CollectionRegistry.single(LoadedIndex(engine, None))
    try:
        assert registry.describe("").missing_shards == ()
        assert registry.counts() == CollectionCounts(len(DOCS), 0)
        group.down = frozenset({1})
        with pytest.raises(UnavailableError):
            engine.index  # noqa: B018 (GetIndexStats: every shard or UNAVAILABLE)
        expected = sum(1 for d in DOCS if shard_of(d.id, 3) != 1)
        group.methods = ()
        # What a metrics scrape reports (hybridsearch_index_documents, still answering, and
        # hybridsearch_shards_missing), from one question to the shards for both.
        assert registry.counts() == CollectionCounts(expected, 1)
        assert group.methods == ("stats",)
        # What ListCollections / GetCollection send, and how the CLI shows it.
        info = description_to_proto(registry.describe(""))
        assert (list(info.missing_shards), info.document_count) == ([1], expected)
        assert "(3 shards, 1 missing)" in collections_cli.list_table([info])[1]
    finally:
        engine.close()


def _page_facts(result: SearchResult) -> list[tuple[str, bool, bool]]:
    return [
        (h.id, h.explanation.sparse is not None, h.explanation.dense is not None)
        for h in result.hits
        if h.explanation is not None
    ]


def test_a_write_between_a_progressive_query_s_fan_outs_keeps_each_document_once(
    tmp_path: Path,
) -> None:
    # A progressive query asks the shards twice (BM25 first, vectors after the encoding); an
    # upsert between the two renumbers the document in its shard. The front used to number
    # candidates by shard-local ordinals over both fan-outs: the document came back twice
    # (once per arm), or another's arm score was given to it.
    engine = _sharded(_build(tmp_path, 2))
    writer = ShardedWriter(engine)
    query = Query("shock wave boundary", top_k=100, explain=True)
    try:
        top = engine.search(query).hits[0]
        again = next(d for d in DOCS if d.id == top.id)
        result = engine.search_progressive(query, lambda _: writer.upsert([again]))
        facts = _page_facts(result)
        ids = [doc_id for doc_id, _, _ in facts]
        assert len(ids) == len(set(ids)) == len(DOCS)
        assert facts[0] == (top.id, True, True)
        assert result.hits[0].score == pytest.approx(top.score)
    finally:
        engine.close()


def test_a_compaction_between_prf_rounds_gives_no_document_another_s_score(
    tmp_path: Path,
) -> None:
    # PRF's second round is another fan-out; a compaction before it renumbers every document.
    path = _build(tmp_path, 2)
    engine = _sharded(path)
    writer = ShardedWriter(engine)
    deleted = [d.id for d in DOCS[::3]]
    writer.delete(deleted)
    query = Query(
        "shock wave boundary",
        top_k=100,
        explain=True,
        prf=PrfSettings(rm3=True, hybrid_stage=PrfStage.AFTER),
    )
    # Cosines are the same in every version of a shard: each hit's dense score must be its own.
    dense = engine.search(Query("shock wave boundary", mode=RetrievalMode.DENSE, top_k=100))
    cosine = {h.id: h.score for h in dense.hits}
    compacted = threading.Event()
    real = ShardedPrfBackend.search_sparse

    def compact_first(self: ShardedPrfBackend, *args: Any, **kwargs: Any) -> Any:
        if not compacted.is_set():
            compacted.set()
            writer.compact()
        return real(self, *args, **kwargs)

    try:
        ShardedPrfBackend.search_sparse = compact_first  # type: ignore[method-assign]
        result = engine.search(query)
    finally:
        ShardedPrfBackend.search_sparse = real  # type: ignore[method-assign]
        engine.close()
    assert compacted.is_set()
    ids = [h.id for h in result.hits]
    assert len(ids) == len(set(ids)) == len(DOCS) - len(deleted)
    assert not set(ids) & set(deleted)
    explained = [(h.id, h.explanation.dense) for h in result.hits if h.explanation is not None]
    assert len(explained) == len(ids)
    for doc_id, arm in explained:
        assert arm is not None and arm.raw_score == pytest.approx(cosine[doc_id]), doc_id


def test_a_write_to_live_shards_is_acknowledged_while_another_shard_is_down(
    tmp_path: Path,
) -> None:
    # The first write after start asked every shard for its generation after committing: a
    # shard down made a committed write answer UNAVAILABLE. Reading the schema per document
    # asked every shard too.
    path = _build(tmp_path, 3)
    manifest = load_shard_manifest(path)
    group = DownGroup(path, manifest)
    engine = ShardedSearcher(group, manifest, HashEncoder())
    writer = ShardedWriter(engine)
    try:
        generations = [group.call(s, "stats").generation for s in range(3)]
        group.down = frozenset({1})
        assert writer.schema == SCHEMA  # from the shard manifest: no shard asked
        docs = [Document(f"live-{i}", "", "supersonic inlet") for i in range(12)]
        docs = [d for d in docs if shard_of(d.id, 3) != 1]
        outcome = writer.upsert(docs)
        assert outcome.accepted == len(docs)
        touched = {shard_of(d.id, 3) for d in docs}
        assert outcome.generation == sum(
            g + (s in touched) for s, g in enumerate(generations) if s != 1
        )
        with pytest.raises(UnavailableError):  # a document of the shard that is down
            writer.upsert([next(d for d in DOCS if shard_of(d.id, 3) == 1)])
        group.down = frozenset()
        again = writer.upsert(docs[:1])
        assert again.generation == outcome.generation + 1 + generations[1]
        hits = engine.search(Query("supersonic inlet", mode=RetrievalMode.SPARSE, top_k=20)).hits
        assert {h.id for h in hits} == {d.id for d in docs}
    finally:
        engine.close()


def _tantivy_threads() -> int:
    count = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            if "tantivy" in (task / "comm").read_text():
                count += 1
    return count


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_a_closed_sharded_collection_lets_its_tantivy_threads_go(tmp_path: Path) -> None:
    # Each shard's ingestor refers back to its worker: the cycle kept the shard's tantivy
    # reader and writer (and their threads) until the cyclic GC next ran, minutes on a busy
    # server that creates and deletes sharded collections.
    path = _build(tmp_path, 2)
    gc.collect()
    before = _tantivy_threads()
    gc.disable()
    try:
        engine = _sharded(path)
        engine.search(Query(text="wing", top_k=3, mode=RetrievalMode.SPARSE))
        assert _tantivy_threads() > before
        engine.close()
        del engine
        deadline = time.monotonic() + 10  # tantivy's watcher threads notice within a second
        while _tantivy_threads() > before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _tantivy_threads() <= before
    finally:
        gc.enable()


def test_a_tie_at_a_shard_s_hybrid_dense_cut_is_taken_by_id_as_on_one_index(
    tmp_path: Path,
) -> None:
    """The shard stores "b-tie" before "a-tie" (same text, so the same dense score). With a
    dense depth of 2 the shard's cut falls between them (after "z", the query's own text):
    the shard sends "a-tie", as one index takes a tie at its cut (by id), not the first it
    stores; the front's merged list, and so the fused page, is the unsharded one."""
    docs = [
        Document("z", "", "other"),
        Document("b-tie", "", "quokka habitat survey"),
        Document("a-tie", "", "quokka habitat survey"),
    ]
    path = tmp_path / "sharded"
    build_sharded(docs, path, 1, encoder=HashEncoder(), encoder_info=HASH_ENCODER_INFO)
    one = HybridSearcher(open_index(build_fake_index(tmp_path / "single", docs)), HashEncoder())
    engine = _sharded(path)
    try:
        fusion = FusionSettings(sparse_depth=2, dense_depth=2)
        query = Query("other", top_k=2, fusion=fusion, explain=True)
        for result in (engine.search(query), *engine.search_batch([query])):
            assert [h.id for h in result.hits] == ["z", "a-tie"]
            assert answer(result) == answer(one.search(query))
    finally:
        engine.close()
        one.close()


def test_a_compaction_leaves_each_already_compact_shard_as_it_is(tmp_path: Path) -> None:
    path = _build(tmp_path, 2)
    engine = _sharded(path)
    writer = ShardedWriter(engine)
    shards = [path / shard_dir_name(s) for s in range(2)]
    try:
        # A dead row to reclaim (a fresh build may be compact already: one segment when
        # tantivy indexes on one thread); the other shard may be compact or not.
        writer.delete([DOCS[-1].id])
        assert writer.compact().rewritten
        data_dirs = [load_manifest(shard).data_dir for shard in shards]
        again = writer.compact()
        assert not again.rewritten and again.removed_rows == 0
        assert again.size_bytes_before == again.size_bytes_after
        assert [load_manifest(shard).data_dir for shard in shards] == data_dirs
        generation = again.generation
        assert generation == sum(load_manifest(shard).generation for shard in shards)
        # A delete on one shard: that shard compacts, the other is left as it is.
        victim = DOCS[0].id
        writer.delete([victim])
        hit = shard_of(victim, 2)
        outcome = writer.compact()
        assert outcome.rewritten and outcome.removed_rows == 1
        after = [load_manifest(shard).data_dir for shard in shards]
        assert after[1 - hit] == data_dirs[1 - hit] and after[hit] != data_dirs[hit]
        # The delete's commit and the compaction's, on one shard.
        assert outcome.generation == generation + 2
        assert outcome.generation == sum(load_manifest(shard).generation for shard in shards)
    finally:
        engine.close()
