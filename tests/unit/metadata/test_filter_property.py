"""Property test: a filtered search equals the oracle, in every arm.

The corpus has random typed metadata (all five types, single- and multi-valued, missing
values); it is built, then changed by a live writer (upserts that replace documents, a
delete), so the metadata columns extended by commits and tantivy's stale documents are both
exercised. For random filters (nested; every condition kind) and queries:

- sparse and exact dense: the filtered top-k equals the unfiltered full ranking of the whole
  collection (top_k = collection size) with the documents the oracle rejects removed, then cut
  to top_k: same ids, same order, same scores;
- hybrid: the filtered result equals the fusion (the engine's function) of those two oracle
  arm lists: pre-filtering searches the matching documents only, so fusion (normalisation,
  the floor given to a document one arm did not retrieve) sees only them, and the unfiltered
  hybrid ranking filtered is not the oracle (a fused score depends on the other candidates);
- the filter compiled for tantivy matches exactly the documents the dense mask matches.

The oracle (`matches`) evaluates a filter over a document's raw JSON metadata in plain Python.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridsearch.engine.filtering import search_scope
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.metadata import filter as flt
from hybridsearch.metadata.schema import CollectionSchema, MetadataField, MetadataType
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.writer import IndexWriter
from hybridsearch.types import (
    Document,
    FusionSettings,
    Normalization,
    Query,
    RetrievalMode,
    ScoredDoc,
)
from tests.fakes import HashEncoder, build_fake_index

KW, INT, FLT, BOOL, DT = (
    MetadataType.KEYWORD,
    MetadataType.INTEGER,
    MetadataType.FLOAT,
    MetadataType.BOOLEAN,
    MetadataType.DATETIME,
)
SCHEMA = CollectionSchema(
    (
        MetadataField("tenant", KW),
        MetadataField("tags", KW, multi_valued=True),
        MetadataField("year", INT),
        MetadataField("counts", INT, multi_valued=True),
        MetadataField("price", FLT),
        MetadataField("scores", FLT, multi_valued=True),
        MetadataField("public", BOOL),
        MetadataField("flags", BOOL, multi_valued=True),
        MetadataField("published", DT),
        MetadataField("seen.at", DT, multi_valued=True),
    )
)
KEYWORDS = ["a", "b", "c", "", "Ünï code"]
INTEGERS = [-(2**63), -3, -1, 0, 1, 2, 3, 2**63 - 1]
FLOATS = [-1.5, -0.0, 0.0, 0.5, 2.25, 1e300]
BASE = datetime(2020, 1, 1, tzinfo=UTC)
INSTANTS = [BASE + timedelta(hours=h, microseconds=us) for h in (-30, 0, 5, 48) for us in (0, 7)]
WORDS = ["alpha", "beta", "gamma", "delta", "eps"]
POOL = {KW: KEYWORDS, INT: INTEGERS, FLT: FLOATS, BOOL: [True, False], DT: INSTANTS}


def _json_value(kind: MetadataType, value: Any, rng: random.Random) -> Any:
    if kind is DT:
        zone = timezone(timedelta(hours=rng.choice([0, 2, -5])))
        text = value.astimezone(zone).isoformat()
        return text.replace("+00:00", "Z") if rng.random() < 0.5 else text
    return value


def _metadata(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {"note": rng.choice(["x", 1, None])}  # undeclared: stored only
    for field in SCHEMA.fields:
        pool = POOL[field.type]
        roll = rng.random()
        if roll < 0.2:
            continue  # absent
        if roll < 0.3:
            meta[field.name] = None
        elif field.multi_valued:
            n = rng.randrange(0, 4)
            meta[field.name] = [_json_value(field.type, rng.choice(pool), rng) for _ in range(n)]
        else:
            meta[field.name] = _json_value(field.type, rng.choice(pool), rng)
    return meta


def _doc(rng: random.Random, i: int) -> Document:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 6)))
    return Document(f"d{i:03d}", "", text, _metadata(rng))


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HybridSearcher, dict[str, Document]]]:
    rng = random.Random(1234)
    docs = [_doc(rng, i) for i in range(60)]
    path = build_fake_index(tmp_path_factory.mktemp("filters") / "idx", docs, schema=SCHEMA)
    writer = IndexWriter(path)
    # Live changes: replace some documents, add new ones, delete one.
    changed = [_doc(rng, i) for i in (*range(0, 10), *range(60, 70))]
    writer.upsert(changed, HashEncoder().encode_documents([d.text for d in changed]))
    writer.delete(["d011"])
    searcher = HybridSearcher(writer.committed(), HashEncoder())
    by_id = {d.id: d for d in docs} | {d.id: d for d in changed}
    del by_id["d011"]
    yield searcher, by_id
    searcher.close()
    writer.close()


# --- the oracle ---------------------------------------------------------------------------


def _values(doc: Document, field: MetadataField) -> list[Any]:
    raw = doc.metadata.get(field.name)
    items = [] if raw is None else raw if isinstance(raw, list) else [raw]
    if field.type is DT:
        return [datetime.fromisoformat(v) for v in items]
    return items


def _in_range(value: Any, cond: flt.Range) -> bool:
    return all(
        bound is None or test(value, bound)
        for bound, test in (
            (cond.gt, lambda v, b: v > b),
            (cond.gte, lambda v, b: v >= b),
            (cond.lt, lambda v, b: v < b),
            (cond.lte, lambda v, b: v <= b),
        )
    )


def matches(node: flt.Filter | flt.Condition, doc: Document) -> bool:
    """Whether ``doc`` matches, evaluated directly on its JSON metadata."""
    if isinstance(node, flt.Filter):
        must = all(matches(c, doc) for c in node.must)
        should = sum(matches(c, doc) for c in node.should)
        need = max(1, node.min_should_match) if node.should else 0
        return must and should >= need and not any(matches(c, doc) for c in node.must_not)
    if isinstance(node, flt.HasId):
        return doc.id in node.ids
    assert not isinstance(node, flt.Missing)
    field = SCHEMA.field(node.field)
    assert field is not None
    values = _values(doc, field)
    if isinstance(node, flt.IsNull):
        return not values
    if isinstance(node, flt.Exists):
        return bool(values)
    if isinstance(node, flt.Match):
        return any(v == w and type(v) is type(w) for v in values for w in node.any)
    return any(_in_range(v, node) for v in values)


# --- random filters -----------------------------------------------------------------------


def _fields(*kinds: MetadataType) -> list[MetadataField]:
    return [f for f in SCHEMA.fields if f.type in kinds]


@st.composite
def match_conditions(draw: st.DrawFn) -> flt.Match:
    field = draw(st.sampled_from(_fields(KW, INT, BOOL)))
    values = draw(st.lists(st.sampled_from(POOL[field.type]), min_size=1, max_size=3))
    return flt.Match(field.name, tuple(values))


@st.composite
def range_conditions(draw: st.DrawFn) -> flt.Range:
    field = draw(st.sampled_from(_fields(INT, FLT, DT)))
    if field.type is DT:
        bound = st.sampled_from(INSTANTS)
    elif field.type is INT:
        bound = st.one_of(st.sampled_from(INTEGERS), st.sampled_from([-2.5, 0.5, 1.0, 2.9]))
    else:
        bound = st.one_of(st.sampled_from(FLOATS), st.integers(-3, 3))
    lower = draw(st.sampled_from(["gt", "gte", None]))
    upper = draw(st.sampled_from(["lt", "lte", None] if lower else ["lt", "lte"]))
    bounds = {name: draw(bound) for name in (lower, upper) if name}
    return flt.Range(field.name, **bounds)


ID_POOL = [f"d{i:03d}" for i in range(72)] + ["nope"]
leaves = st.one_of(
    match_conditions(),
    range_conditions(),
    st.sampled_from(SCHEMA.fields).map(lambda f: flt.IsNull(f.name)),
    st.sampled_from(SCHEMA.fields).map(lambda f: flt.Exists(f.name)),
    st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=8).map(
        lambda ids: flt.HasId(tuple(ids))
    ),
)


def _filters(children: st.SearchStrategy[Any]) -> st.SearchStrategy[flt.Filter]:
    return st.tuples(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3),
        st.lists(children, max_size=2),
        st.integers(0, 3),
    ).map(
        lambda t: flt.Filter(
            must=tuple(t[0]),
            should=tuple(t[1]),
            min_should_match=min(t[3], len(t[1])),
            must_not=tuple(t[2]),
        )
    )


filters = _filters(st.recursive(leaves, _filters, max_leaves=10))
queries = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


# --- the properties -----------------------------------------------------------------------


def _full(searcher: HybridSearcher, text: str, mode: RetrievalMode, n: int, **kw: Any) -> list[Any]:
    fusion = FusionSettings(sparse_depth=n, dense_depth=n, **kw)
    return searcher.search(Query(text, top_k=n, mode=mode, fusion=fusion)).hits


def _pairs(hits: list[Any]) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def _check(
    searcher: HybridSearcher,
    docs: Mapping[str, Document],
    filter_: flt.Filter,
    text: str,
    top_k: int,
) -> None:
    n = len(docs)
    keep = {doc_id for doc_id, doc in docs.items() if matches(filter_, doc)}
    for mode in (RetrievalMode.SPARSE, RetrievalMode.DENSE):
        full = _full(searcher, text, mode, n)
        oracle = [(h.id, h.score) for h in full if h.id in keep][:top_k]
        query = Query(text, top_k=top_k, mode=mode, filter=filter_)
        assert _pairs(searcher.search(query).hits) == oracle, mode
    # Hybrid: the engine's fusion of the oracle arm lists.
    index = searcher.index
    ordinal = {index.ids[o]: o for o in range(len(index.ids)) if index.is_live(o)}
    arm_lists = []
    for mode in (RetrievalMode.SPARSE, RetrievalMode.DENSE):
        hits = _full(searcher, text, mode, n)
        arm_lists.append([ScoredDoc(ordinal[h.id], h.score) for h in hits if h.id in keep])
    for normalization in (Normalization.MIN_MAX, Normalization.NONE):
        fused = fuse_interpolate(
            arm_lists[0],
            arm_lists[1],
            alpha=0.5,
            normalization=normalization,
            doc_id=index.ids.__getitem__,
            limit=top_k,
        )
        fusion = FusionSettings(sparse_depth=n, dense_depth=n, normalization=normalization)
        hits = searcher.search(Query(text, top_k=top_k, fusion=fusion, filter=filter_)).hits
        assert _pairs(hits) == [(index.ids[d.ordinal], d.score) for d in fused]
    # The tantivy compilation matches exactly the mask (on live documents).
    scope = search_scope(index, index.live, filter_)
    assert scope.live is not None and scope.sparse_filter is not None
    tantivy_live = {
        o for o in index.sparse.matching_ordinals(scope.sparse_filter) if index.is_live(o)
    }
    assert tantivy_live == set(np.flatnonzero(scope.live).tolist())
    assert {index.ids[o] for o in tantivy_live} == keep


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filter_=filters, text=queries, top_k=st.integers(1, 12))
def test_filtered_search_equals_the_oracle(
    corpus: tuple[HybridSearcher, dict[str, Document]], filter_: flt.Filter, text: str, top_k: int
) -> None:
    searcher, docs = corpus
    _check(searcher, docs, filter_, text, top_k)


def test_filters_matching_0_1_top_k_minus_1_and_all_documents(
    corpus: tuple[HybridSearcher, dict[str, Document]],
) -> None:
    searcher, docs = corpus
    ids = sorted(docs)
    top_k = 10
    cases = {
        0: flt.Filter(must=(flt.HasId(("nope",)),)),
        1: flt.Filter(must=(flt.HasId((ids[5],)),)),
        top_k - 1: flt.Filter(must=(flt.HasId(tuple(ids[: top_k - 1])),)),
        len(ids): flt.Filter(),
        -1: flt.Filter(must_not=(flt.Exists("tenant"),)),  # must_not alone
    }
    for expected, filter_ in cases.items():
        keep = [d for d in ids if matches(filter_, docs[d])]
        assert expected == -1 or len(keep) == expected
        for text in ("alpha", "beta gamma"):
            _check(searcher, docs, filter_, text, top_k)
        # Dense mode ranks every matching document: exactly min(top_k, matches) hits.
        hits = searcher.search(
            Query("alpha", top_k=top_k, mode=RetrievalMode.DENSE, filter=filter_)
        ).hits
        assert len(hits) == min(top_k, len(keep))


def test_filtered_prf_takes_feedback_from_the_filtered_set(
    corpus: tuple[HybridSearcher, dict[str, Document]],
) -> None:
    searcher, docs = corpus
    filter_ = flt.Filter(must=(flt.Exists("year"),), must_not=(flt.Match("tenant", ("a",)),))
    keep = {d for d, doc in docs.items() if matches(filter_, doc)}
    prf = dataclasses.replace(Query("alpha").prf, rm3=True, fb_docs=3)
    for mode in RetrievalMode:
        hits = searcher.search(
            Query("alpha beta", top_k=20, mode=mode, prf=prf, filter=filter_)
        ).hits
        assert hits and {h.id for h in hits} <= keep


def test_columns_read_back_from_disk_and_compaction_keep_filters(tmp_path: Path) -> None:
    rng = random.Random(99)
    docs = [_doc(rng, i) for i in range(30)]
    path = build_fake_index(tmp_path / "idx", docs, schema=SCHEMA)
    writer = IndexWriter(path)
    try:
        changed = [_doc(rng, i) for i in range(0, 30, 2)]
        writer.upsert(changed, HashEncoder().encode_documents([d.text for d in changed]))
        writer.delete(["d001", "d003"])
        by_id = {d.id: d for d in docs} | {d.id: d for d in changed}
        del by_id["d001"], by_id["d003"]
        probes = [
            flt.Filter(must=(flt.Exists("year"),)),
            flt.Filter(should=(flt.Match("tenant", ("a", "b")), flt.Range("price", gte=0.0))),
            flt.Filter(must_not=(flt.IsNull("seen.at"),)),
        ]
        opened = [writer.committed, lambda: open_index(path)]  # kept columns, read back
        for compact in (False, True):
            if compact:
                writer.compact()
            for open_state in opened:
                searcher = HybridSearcher(open_state(), HashEncoder())
                for filter_ in probes:
                    _check(searcher, by_id, filter_, "alpha beta", 8)
                searcher.close()
    finally:
        writer.close()
