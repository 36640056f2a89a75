"""Training and honest evaluation of the adaptive fusion model from cached arm runs.

Recipe (``scripts/train_fusion.py`` runs it):

1. For every judged query of every collection, the features (`fusion.adaptive.query_features`)
   and its nDCG@10 under interpolation at each candidate alpha (`CANDIDATE_ALPHAS`).
2. A multinomial logistic model over the candidate alphas, fitted (Adam) by cross-entropy to
   soft targets: each query's nDCG@10 at the candidate alphas through a softmax at a
   temperature, so a query where the alpha hardly matters teaches little; an L2 penalty on
   the weights; each collection weighs the same, whatever its number of queries. (Fitting the
   expected nDCG@10 directly was tried: it collapses onto one alpha for every query.)
3. Prediction: the expected alpha under the model's distribution (smooth, never extreme
   unless the model is sure).

Leave-one-collection-out: for each collection, a model fitted on the others ranks its queries.
Figures are computed from full runs (1000 documents per query) with ir-measures, as every other
table of ``docs/effectiveness.md``; significance by a paired randomisation test on per-query
nDCG@10.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hybridsearch.eval.arm_runs import ArmRuns, QueryRun
from hybridsearch.fusion.adaptive import FEATURE_NAMES, AdaptiveModel, query_features
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.fusion.normalize import missing_floor, normalize_scores
from hybridsearch.fusion.rrf import fuse_rrf
from hybridsearch.types import FusedDoc, Normalization

CANDIDATE_ALPHAS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
GRID: tuple[float, ...] = tuple(round(i * 0.1, 1) for i in range(11))
_CUT = 10


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """Per-query features and nDCG@10 at each alpha of ``alphas``, with collection labels."""

    features: NDArray[np.float64]  # (n, f)
    gains: NDArray[np.float64]  # (n, k) nDCG@10 at each alpha
    alphas: NDArray[np.float64]  # (k,)
    collection: NDArray[np.str_]  # (n,)


def ndcg_at_10(ranked_ids: Sequence[str], judged: Mapping[str, int]) -> float:
    """trec_eval's ndcg_cut.10 of one ranking (gain = relevance level, log2 discount)."""
    dcg = sum(
        judged.get(doc, 0) / np.log2(rank + 2)
        for rank, doc in enumerate(ranked_ids[:_CUT])
        if judged.get(doc, 0) > 0
    )
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:_CUT]
    best = sum(r / np.log2(rank + 2) for rank, r in enumerate(ideal))
    return float(dcg / best) if best > 0 else 0.0


def grid_ndcg(
    query: QueryRun,
    ids: Sequence[str],
    judged: Mapping[str, int],
    alphas: Sequence[float],
    normalization: Normalization,
) -> NDArray[np.float64]:
    """nDCG@10 of the query's interpolated ranking at each alpha (ordered like trec_eval:
    score descending, ties by document id descending)."""
    sparse, dense = query.sparse, query.dense
    union = np.union1d(sparse.ordinals, dense.ordinals)
    s_norm = normalize_scores(sparse.scores, normalization)
    d_norm = normalize_scores(dense.scores, normalization)
    s_side = np.full(len(union), missing_floor(s_norm, normalization))
    s_side[np.searchsorted(union, sparse.ordinals)] = s_norm
    d_side = np.full(len(union), missing_floor(d_norm, normalization))
    d_side[np.searchsorted(union, dense.ordinals)] = d_norm
    names = np.array([ids[int(o)] for o in union])
    # Rank of each name in descending id order, to break ties like trec_eval.
    id_rank = np.empty(len(union), dtype=np.int64)
    id_rank[np.argsort(names)[::-1]] = np.arange(len(union))
    out = np.empty(len(alphas), dtype=np.float64)
    for i, alpha in enumerate(alphas):
        scores = (1.0 - alpha) * s_side + alpha * d_side
        top = np.lexsort((id_rank, -scores))[:_CUT]
        out[i] = ndcg_at_10(names[top].tolist(), judged)
    return out


def training_set(
    runs: Sequence[ArmRuns], alphas: Sequence[float], normalization: Normalization
) -> TrainingSet:
    """Features and per-alpha nDCG@10 of every judged query of ``runs``."""
    features, gains, labels = [], [], []
    for collection in runs:
        for qid, query in collection.queries.items():
            features.append(features_of(query))
            gains.append(
                grid_ndcg(query, collection.ids, collection.qrels[qid], alphas, normalization)
            )
            labels.append(collection.name)
    return TrainingSet(
        np.array(features), np.array(gains), np.array(alphas, dtype=np.float64), np.array(labels)
    )


def features_of(query: QueryRun) -> NDArray[np.float64]:
    """The features the server computes for this query."""
    return query_features(
        query.stats,
        query.sparse.scores,
        query.dense.scores,
        query.sparse.ordinals,
        query.dense.ordinals,
    )


def fit(
    data: TrainingSet,
    normalization: Normalization,
    *,
    l2: float = 0.1,
    temperature: float = 0.05,
    steps: int = 3000,
    learning_rate: float = 0.1,
) -> AdaptiveModel:
    """The multinomial logistic model fitted by cross-entropy to soft targets (each query's
    nDCG@10 per candidate alpha through a softmax at ``temperature``), collections weighed
    equally, plus ``l2`` times the squared weights."""
    x = data.features
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale <= 1e-12] = 1.0
    z = (x - mean) / scale
    names, counts = np.unique(data.collection, return_counts=True)
    per = dict(zip(names.tolist(), counts.tolist(), strict=True))
    weight = np.array([1.0 / per[c] for c in data.collection]) / len(names)
    k, f = data.gains.shape[1], x.shape[1]
    w = np.zeros((k, f))
    b = np.zeros(k)
    # Soft targets: each query's nDCG@10 per alpha through a softmax at ``temperature``; a
    # query where the alpha hardly matters gets a near-uniform target and teaches little.
    targets = np.exp((data.gains - data.gains.max(axis=1, keepdims=True)) / temperature)
    targets /= targets.sum(axis=1, keepdims=True)
    adam_w, adam_b = _Adam(w.shape), _Adam(b.shape)
    for step in range(1, steps + 1):
        logits = z @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g_logits = weight[:, None] * (targets - p)  # d (-cross-entropy) / d logits
        w -= adam_w.update(-(g_logits.T @ z) + 2 * l2 * w, step, learning_rate)
        b -= adam_b.update(-g_logits.sum(axis=0), step, learning_rate)
    return AdaptiveModel(
        alphas=data.alphas.copy(),
        mean=mean,
        scale=scale,
        weights=w,
        bias=b,
        normalization=normalization,
        source="trained",
    )


class _Adam:
    """Adam's moment estimates for one parameter array (Kingma & Ba, 2015)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)

    def update(self, grad: NDArray[np.float64], step: int, rate: float) -> NDArray[np.float64]:
        """The step to subtract from the parameter for gradient ``grad`` (of a loss)."""
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        m_hat = self.m / (1 - 0.9**step)
        v_hat = self.v / (1 - 0.999**step)
        step_size: NDArray[np.float64] = rate * m_hat / (np.sqrt(v_hat) + 1e-8)
        return step_size


Fuser = Callable[[QueryRun, Callable[[int], str]], list[FusedDoc]]


def fixed(alpha: float, normalization: Normalization) -> Fuser:
    """Interpolation at a fixed alpha."""

    def fuse(query: QueryRun, doc_id: Callable[[int], str]) -> list[FusedDoc]:
        return fuse_interpolate(
            query.sparse,
            query.dense,
            alpha=alpha,
            normalization=normalization,
            doc_id=doc_id,
            limit=1000,
        )

    return fuse


def rrf(k: int = 60) -> Fuser:
    """Reciprocal rank fusion."""

    def fuse(query: QueryRun, doc_id: Callable[[int], str]) -> list[FusedDoc]:
        return fuse_rrf(query.sparse, query.dense, k=k, doc_id=doc_id, limit=1000)

    return fuse


def adaptive(model: AdaptiveModel) -> Fuser:
    """Interpolation at the model's alpha for each query."""

    def fuse(query: QueryRun, doc_id: Callable[[int], str]) -> list[FusedDoc]:
        alpha = model.alpha(features_of(query))
        return fixed(alpha, model.normalization)(query, doc_id)

    return fuse


def fused_run(runs: ArmRuns, fuser: Fuser) -> dict[str, dict[str, float]]:
    """qid → {docid: fused score} of every judged query (1000 documents)."""
    doc_id = runs.ids.__getitem__
    return {
        qid: {doc_id(d.ordinal): d.score for d in fuser(query, doc_id)}
        for qid, query in runs.queries.items()
    }


def randomization_test(
    a: NDArray[np.float64], b: NDArray[np.float64], *, trials: int = 20_000, seed: int = 7
) -> float:
    """Two-sided p-value of a paired randomisation (sign-flip) test of mean(a - b) = 0."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    observed = abs(diff.mean())
    if observed == 0.0:
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(trials, len(diff)))
    means = np.abs((signs * diff).mean(axis=1))
    return float((np.count_nonzero(means >= observed - 1e-15) + 1) / (trials + 1))


__all__ = [
    "CANDIDATE_ALPHAS",
    "FEATURE_NAMES",
    "GRID",
    "TrainingSet",
    "adaptive",
    "fit",
    "fixed",
    "fused_run",
    "grid_ndcg",
    "randomization_test",
    "rrf",
    "training_set",
]


def concat(sets: Sequence[TrainingSet]) -> TrainingSet:
    """The queries of several training sets as one (same alphas)."""
    return TrainingSet(
        np.concatenate([s.features for s in sets]),
        np.concatenate([s.gains for s in sets]),
        sets[0].alphas,
        np.concatenate([s.collection for s in sets]),
    )
