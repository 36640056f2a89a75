from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from hybridsearch.fusion import fuse_interpolate, fuse_rrf
from hybridsearch.types import FusedDoc, Normalization, ScoredDoc

scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def arm(draw: st.DrawFn) -> list[ScoredDoc]:
    ordinals = draw(st.lists(st.integers(0, 40), unique=True, max_size=15))
    values = sorted((draw(scores) for _ in ordinals), reverse=True)
    return [ScoredDoc(o, v) for o, v in zip(ordinals, values, strict=True)]


def doc_id(ordinal: int) -> str:
    return f"d{ordinal:03d}"


def check(fused: list[FusedDoc], sparse: list[ScoredDoc], dense: list[ScoredDoc]) -> None:
    ordinals = [d.ordinal for d in fused]
    assert len(ordinals) == len(set(ordinals))
    assert set(ordinals) == {h.ordinal for h in sparse} | {h.ordinal for h in dense}
    assert all(math.isfinite(d.score) for d in fused)
    keys = [(-d.score, doc_id(d.ordinal)) for d in fused]
    assert keys == sorted(keys)
    sparse_ids = {h.ordinal for h in sparse}
    dense_ids = {h.ordinal for h in dense}
    for d in fused:
        assert (d.sparse is not None) == (d.ordinal in sparse_ids)
        assert (d.dense is not None) == (d.ordinal in dense_ids)


@given(arm(), arm(), st.floats(0.0, 1.0), st.sampled_from(list(Normalization)))
def test_interpolate_properties(
    sparse: list[ScoredDoc], dense: list[ScoredDoc], alpha: float, norm: Normalization
) -> None:
    check(
        fuse_interpolate(sparse, dense, alpha=alpha, normalization=norm, doc_id=doc_id),
        sparse,
        dense,
    )


@given(arm(), arm(), st.integers(1, 1000), st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_rrf_properties(
    sparse: list[ScoredDoc], dense: list[ScoredDoc], k: int, ws: float, wd: float
) -> None:
    check(
        fuse_rrf(sparse, dense, k=k, sparse_weight=ws, dense_weight=wd, doc_id=doc_id),
        sparse,
        dense,
    )


@given(arm(), arm(), st.floats(0.0, 1.0), st.sampled_from(list(Normalization)), st.integers(0, 35))
def test_interpolate_limit_equals_cutting_the_full_list(
    sparse: list[ScoredDoc], dense: list[ScoredDoc], alpha: float, norm: Normalization, limit: int
) -> None:
    full = fuse_interpolate(sparse, dense, alpha=alpha, normalization=norm, doc_id=doc_id)
    cut = fuse_interpolate(
        sparse, dense, alpha=alpha, normalization=norm, doc_id=doc_id, limit=limit
    )
    assert cut == full[:limit]


@given(arm(), arm(), st.integers(1, 100), st.integers(0, 35))
def test_rrf_limit_equals_cutting_the_full_list(
    sparse: list[ScoredDoc], dense: list[ScoredDoc], k: int, limit: int
) -> None:
    full = fuse_rrf(sparse, dense, k=k, doc_id=doc_id)
    assert fuse_rrf(sparse, dense, k=k, doc_id=doc_id, limit=limit) == full[:limit]
