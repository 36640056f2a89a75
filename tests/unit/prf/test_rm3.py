from __future__ import annotations

import math

import pytest

from hybridsearch.prf import FeedbackDoc, rm3_expand

QUERY = {"cat": 1.0, "dog": 1.0}
DOCS = [
    FeedbackDoc(score=2.0, term_freqs={"cat": 3, "fish": 1}),
    FeedbackDoc(score=1.0, term_freqs={"fish": 2, "bird": 2}),
]


def test_two_docs_hand_computed() -> None:
    # d1: cat 3/4, fish 1/4 (×2) ; d2: fish 1/2, bird 1/2 (×1)
    # RM1 ∝ cat 1.5, fish 1.0, bird 0.5 → /3 ; RM3 = .5 q + .5 RM1
    got = rm3_expand(QUERY, DOCS)
    assert got == pytest.approx({"cat": 0.5, "dog": 0.25, "fish": 1 / 6, "bird": 1 / 12})
    assert sum(got.values()) == pytest.approx(1.0)


def test_fb_terms_prunes_relevance_model() -> None:
    got = rm3_expand(QUERY, DOCS, fb_terms=2)
    # RM1 keeps cat 1.5 and fish 1.0 → .6 / .4
    assert got == pytest.approx({"cat": 0.55, "dog": 0.25, "fish": 0.2})


def test_fb_terms_also_prunes_each_document_before_normalising() -> None:
    # fb_terms 1: d1 → {cat: 3} (norm 3), d2 → tie fish/bird → "bird" (norm 2)
    # RM1 ∝ cat 2, bird 1 → pruned to cat → 1.0
    got = rm3_expand(QUERY, DOCS, fb_terms=1)
    assert got == pytest.approx({"cat": 0.75, "dog": 0.25})


def test_original_query_weight_extremes() -> None:
    assert rm3_expand(QUERY, DOCS, original_query_weight=1.0) == pytest.approx(
        {"cat": 0.5, "dog": 0.5, "fish": 0.0, "bird": 0.0}
    )
    only_rm = rm3_expand(QUERY, DOCS, original_query_weight=0.0)
    assert only_rm == pytest.approx({"cat": 0.5, "dog": 0.0, "fish": 1 / 3, "bird": 1 / 6})


def test_fb_docs_limits_feedback_to_the_first_docs() -> None:
    got = rm3_expand(QUERY, DOCS, fb_docs=1)
    assert got == pytest.approx({"cat": 0.25 + 0.375, "dog": 0.25, "fish": 0.125})


def test_query_weights_are_normalised() -> None:
    got = rm3_expand({"cat": 3.0, "dog": 1.0}, [])
    assert got == pytest.approx({"cat": 0.75, "dog": 0.25})


def test_no_feedback_or_no_query() -> None:
    assert rm3_expand(QUERY, []) == pytest.approx({"cat": 0.5, "dog": 0.5})
    assert rm3_expand({}, DOCS) == pytest.approx({"cat": 0.5, "fish": 1 / 3, "bird": 1 / 6})
    assert rm3_expand({}, []) == {}


def test_term_filter_like_anserini() -> None:
    doc = FeedbackDoc(
        score=1.0,
        term_freqs={
            "a": 5,  # too short
            "über": 5,  # not [a-z0-9]
            "abcdefghijklmnopqrstu": 5,  # 21 characters
            "1984": 1,  # numeric: kept, as in Anserini
            "the": 1,
            "ok": 2,
            "zero": 0,
        },
    )
    got = rm3_expand({"q": 1.0}, [doc], original_query_weight=0.0)
    assert got == pytest.approx({"1984": 0.25, "the": 0.25, "ok": 0.5, "q": 0.0})
    no_stop = rm3_expand({"q": 1.0}, [doc], original_query_weight=0.0, stopwords={"the"})
    assert no_stop == pytest.approx({"1984": 1 / 3, "ok": 2 / 3, "q": 0.0})


def test_document_frequency_filter() -> None:
    df = {"cat": 1, "fish": 50, "bird": 10}
    got = rm3_expand(QUERY, DOCS, original_query_weight=0.0, doc_freq=df.__getitem__, num_docs=100)
    # fish (50 %) dropped: d1 → cat 1.0 ×2, d2 → bird 1.0 ×1 → cat 2/3, bird 1/3
    assert got == pytest.approx({"cat": 2 / 3, "dog": 0.0, "bird": 1 / 3})


def test_deterministic_output_order() -> None:
    assert list(rm3_expand(QUERY, DOCS)) == ["bird", "cat", "dog", "fish"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"fb_docs": 0}, "fb_docs"),
        ({"fb_terms": 0}, "fb_terms"),
        ({"fb_terms": True}, "fb_terms"),
        ({"original_query_weight": 1.5}, "original_query_weight"),
        ({"original_query_weight": -0.1}, "original_query_weight"),
        ({"original_query_weight": math.nan}, "original_query_weight"),
    ],
)
def test_bad_parameters_are_programming_errors(kwargs: dict[str, float], name: str) -> None:
    # Requests are validated before PRF (engine.request); here it is a caller's bug.
    with pytest.raises(ValueError, match=f"^{name} must be"):
        rm3_expand(QUERY, DOCS, **kwargs)  # type: ignore[arg-type]


def test_programming_errors() -> None:
    with pytest.raises(ValueError, match="num_docs"):
        rm3_expand(QUERY, DOCS, doc_freq=lambda _: 1)
    with pytest.raises(ValueError, match="finite"):
        rm3_expand(QUERY, [FeedbackDoc(math.inf, {"cat": 1})])
