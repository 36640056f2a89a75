"""PRF orchestration with a fake index: feedback sources, re-searches and fusion per stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from hybridsearch.prf.pipeline import FirstRound, applicable, feedback_weights, run_prf
from hybridsearch.types import (
    ArmScore,
    FusedDoc,
    PrfSettings,
    PrfStage,
    Query,
    RetrievalMode,
    ScoredDoc,
    VectorPrfMethod,
)

TEXTS = {0: "cat cat fish", 1: "fish bird", 2: "dog", 3: "bird bird"}
VECTORS = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)


class FakeBackend:
    def __init__(self) -> None:
        self.sparse_queries: list[dict[str, float]] = []
        self.dense_queries: list[NDArray[np.float32]] = []
        self.text_requests: list[list[int]] = []
        self.vector_requests: list[list[int]] = []

    def feedback_text(self, ordinals: Sequence[int]) -> dict[int, str]:
        self.text_requests.append(list(ordinals))
        return {o: TEXTS[o] for o in ordinals}

    def doc_vectors(self, ordinals: Sequence[int]) -> NDArray[np.float32]:
        self.vector_requests.append(list(ordinals))
        return VECTORS[list(ordinals)]

    def doc_freq(self, term: str) -> int:
        return 1

    @property
    def num_docs(self) -> int:
        return 100

    def search_sparse(self, term_weights: Mapping[str, float], depth: int) -> list[ScoredDoc]:
        self.sparse_queries.append(dict(term_weights))
        return [ScoredDoc(3, 9.0), ScoredDoc(1, 8.0)][:depth]

    def search_dense(self, vector: NDArray[np.float32], depth: int) -> list[ScoredDoc]:
        self.dense_queries.append(vector)
        return [ScoredDoc(2, 0.9), ScoredDoc(0, 0.5)][:depth]


def record_rank(
    calls: list[tuple[list[int] | None, list[int] | None]],
):
    """A fake fusion: concatenates the lists (sparse first) and records what it was given."""

    def rank(sparse: list[ScoredDoc] | None, dense: list[ScoredDoc] | None) -> list[FusedDoc]:
        calls.append(
            (
                None if sparse is None else [d.ordinal for d in sparse],
                None if dense is None else [d.ordinal for d in dense],
            )
        )
        out: list[FusedDoc] = []
        seen: set[int] = set()
        for doc in [*(sparse or []), *(dense or [])]:
            if doc.ordinal not in seen:
                seen.add(doc.ordinal)
                arm = ArmScore(doc.score, 1, doc.score)
                out.append(FusedDoc(doc.ordinal, 1.0 / (len(out) + 1), arm, None))
        return out

    return rank


FIRST = FirstRound(
    sparse=[ScoredDoc(0, 2.0), ScoredDoc(1, 1.0)],
    dense=[ScoredDoc(2, 0.8), ScoredDoc(3, 0.7)],
    query_vector=np.array([1.0, 0.0], dtype=np.float32),
    sparse_depth=10,
    dense_depth=10,
)


def query(prf: PrfSettings, mode: RetrievalMode = RetrievalMode.HYBRID) -> Query:
    return Query("cat dog", mode=mode, prf=prf)


def test_feedback_weights_keep_positive_scores_and_shift_others() -> None:
    assert feedback_weights([ScoredDoc(0, 2.0), ScoredDoc(1, 1.0)]) == [2.0, 1.0]
    # z-score fusion: 1.0, -1.0 → shifted by +1 + 2e-3 → 2.002, 0.002
    shifted = feedback_weights([ScoredDoc(0, 1.0), ScoredDoc(1, -1.0)])
    assert shifted == pytest.approx([2.002, 0.002])
    assert feedback_weights([ScoredDoc(0, 0.0), ScoredDoc(1, 0.0)]) == [1.0, 1.0]
    assert feedback_weights([]) == []


def test_applicable_drops_the_part_of_an_arm_that_does_not_run() -> None:
    both = PrfSettings(rm3=True, vector_method=VectorPrfMethod.AVERAGE)
    assert applicable(both, RetrievalMode.SPARSE).vector_method is VectorPrfMethod.NONE
    assert applicable(both, RetrievalMode.SPARSE).rm3
    assert not applicable(both, RetrievalMode.DENSE).rm3
    assert applicable(both, RetrievalMode.HYBRID) == both


def test_rm3_after_uses_own_list_and_hand_computed_weights() -> None:
    backend, calls = FakeBackend(), []
    prf = PrfSettings(rm3=True, fb_docs=2, hybrid_stage=PrfStage.AFTER)
    result = run_prf(query(prf), FIRST, backend, record_rank(calls))
    assert backend.text_requests == [[0, 1]]  # the BM25 list, not the fused one
    # d0 "cat cat fish" (score 2): cat 2/3, fish 1/3; d1 "fish bird" (score 1): 1/2 each
    # RM1 ∝ cat 4/3, fish 2/3 + 1/2 = 7/6, bird 1/2 → sum 3 → cat 4/9, fish 7/18, bird 1/6
    # RM3 = .5 · {cat .5, dog .5} + .5 · RM1
    expected = {"cat": 0.25 + 2 / 9, "dog": 0.25, "fish": 7 / 36, "bird": 1 / 12}
    assert backend.sparse_queries == [pytest.approx(expected)]
    assert result.expansion_terms == pytest.approx(expected)
    assert list(result.expansion_terms) == ["cat", "dog", "fish", "bird"]  # heaviest first
    # One fusion: the expanded BM25 list with the untouched dense list.
    assert calls == [([3, 1], [2, 3])]
    assert backend.dense_queries == []


def test_vector_prf_after_averages_the_dense_feedback() -> None:
    backend, calls = FakeBackend(), []
    prf = PrfSettings(vector_method=VectorPrfMethod.AVERAGE, vector_depth=2)
    run_prf(query(prf), FIRST, backend, record_rank(calls))
    assert backend.vector_requests == [[2, 3]]
    # (q + v2 + v3) / 3 = ([1,0] + [1,1] + [-1,0]) / 3 = [1/3, 1/3] → unit: [.7071, .7071]
    np.testing.assert_allclose(backend.dense_queries[0], [0.70710677, 0.70710677], rtol=1e-6)
    assert calls == [([0, 1], [2, 0])]


def test_rocchio_uses_alpha_and_beta() -> None:
    backend = FakeBackend()
    prf = PrfSettings(
        vector_method=VectorPrfMethod.ROCCHIO, vector_depth=1, rocchio_alpha=1.0, rocchio_beta=1.0
    )
    run_prf(query(prf, RetrievalMode.DENSE), FIRST, backend, record_rank([]))
    # 1·[1,0] + 1·[1,1] = [2,1] → unit [2,1]/√5
    np.testing.assert_allclose(backend.dense_queries[0], np.array([2, 1]) / np.sqrt(5), rtol=1e-6)


def test_before_with_one_prf_arm_returns_that_arm_alone() -> None:
    backend, calls = FakeBackend(), []
    prf = PrfSettings(vector_method=VectorPrfMethod.AVERAGE, hybrid_stage=PrfStage.BEFORE)
    result = run_prf(query(prf), FIRST, backend, record_rank(calls))
    # First the first-round fusion (feedback source), then the dense second round alone.
    assert calls == [([0, 1], [2, 3]), (None, [2, 0])]
    assert backend.vector_requests == [[0, 1, 2]]  # top 3 of the fused list
    assert [d.ordinal for d in result.ranked] == [2, 0]


def test_both_fuses_again_with_the_first_round_of_the_other_arm() -> None:
    backend, calls = FakeBackend(), []
    prf = PrfSettings(vector_method=VectorPrfMethod.AVERAGE, hybrid_stage=PrfStage.BOTH)
    run_prf(query(prf), FIRST, backend, record_rank(calls))
    assert calls == [([0, 1], [2, 3]), ([0, 1], [2, 0])]


def test_before_with_both_arms_takes_all_feedback_from_the_fused_list() -> None:
    backend, calls = FakeBackend(), []
    prf = PrfSettings(
        rm3=True, fb_docs=3, vector_method=VectorPrfMethod.AVERAGE, hybrid_stage=PrfStage.BEFORE
    )
    run_prf(query(prf), FIRST, backend, record_rank(calls))
    assert backend.text_requests == [[0, 1, 2]]
    assert backend.vector_requests == [[0, 1, 2]]
    assert calls == [([0, 1], [2, 3]), ([3, 1], [2, 0])]


def test_single_arm_modes_ignore_the_stage() -> None:
    backend, calls = FakeBackend(), []
    prf = PrfSettings(rm3=True, hybrid_stage=PrfStage.BEFORE)
    sparse_only = FirstRound(FIRST.sparse, None, None, 10, 10)
    result = run_prf(query(prf, RetrievalMode.SPARSE), sparse_only, backend, record_rank(calls))
    assert calls == [([3, 1], None)]
    assert backend.text_requests == [[0, 1]]
    assert result.applied.rm3


def test_expansion_terms_list_only_the_terms_searched() -> None:
    """With the original query weighted 1.0 the feedback terms weigh 0: they are not searched,
    so explain does not list them."""
    backend, calls = FakeBackend(), []
    prf = PrfSettings(rm3=True, fb_docs=2, original_query_weight=1.0, hybrid_stage=PrfStage.AFTER)
    result = run_prf(query(prf), FIRST, backend, record_rank(calls))
    assert result.expansion_terms == pytest.approx({"cat": 0.5, "dog": 0.5})
