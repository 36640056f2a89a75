"""Query-adaptive fusion: a per-query alpha from cheap features of the query and both lists.

A fixed alpha is a compromise: the best weight of the dense side varies far more from query
to query than from collection to collection. `AdaptiveModel` maps a handful of features that
cost microseconds (see `FEATURE_NAMES`) to a probability over a few candidate alphas (a
multinomial logistic model, coefficients in a small JSON file); the query's alpha is the
expected alpha under that distribution, and the lists are then interpolated with it exactly as
`fuse_interpolate` does. The model is trained by ``scripts/train_fusion.py`` from per-query runs
on the shared collections (the recipe is in that script and in ``docs/effectiveness.md``).

Features are chosen to mean the same thing on any collection (no raw BM25 magnitudes, which
depend on the corpus): the dense top-1 cosine and its drop to the 10th, the relative drop of
BM25 from the 1st to the 10th, the overlap of the two top-10s, the query's length in terms and
the mean IDF of its terms scaled by the largest IDF the collection can give.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridsearch.fusion._lists import arm_columns
from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.types import AdaptiveChoice, FusedDoc, Normalization, RankedList, ScoredDoc

#: The model file's format tag; a file with another one is refused.
MODEL_FORMAT = "hybridsearch-adaptive-fusion/1"
#: The model shipped in the package (trained on all seven shared collections).
DEFAULT_MODEL_PATH = Path(__file__).with_name("adaptive_model.json")
#: Features in model order.
FEATURE_NAMES: tuple[str, ...] = (
    "dense_top",  # cosine of the dense arm's best document
    "dense_drop",  # dense top-1 cosine minus the 10th's
    "sparse_drop",  # (BM25 top-1 - BM25 10th) / BM25 top-1
    "overlap",  # |top-10 sparse ∩ top-10 dense| / 10
    "query_terms",  # log(1 + distinct analysed query terms)
    "mean_idf",  # mean over distinct query terms of idf / idf of a term in no document
)
_TOP = 10


class AdaptiveModelError(ValueError):
    """The adaptive fusion model file is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class QueryStats:
    """What the features need of the query itself: the document frequency of each of its
    distinct analysed terms, and the number of documents in the index."""

    doc_freqs: Sequence[int]
    num_docs: int


def idf(doc_freq: int, num_docs: int) -> float:
    """BM25's IDF (Robertson-Spärck Jones, +1 inside the log as Lucene and tantivy)."""
    return math.log(1.0 + (num_docs - doc_freq + 0.5) / (doc_freq + 0.5))


def query_features(
    stats: QueryStats,
    sparse_scores: NDArray[np.float64],
    dense_scores: NDArray[np.float64],
    sparse_top: NDArray[np.int64],
    dense_top: NDArray[np.int64],
) -> NDArray[np.float64]:
    """The feature vector (`FEATURE_NAMES` order) of one query; lists best first.

    An empty list contributes zeros (no top score, no drop, no overlap).
    """
    dense_top_score = float(dense_scores[0]) if len(dense_scores) else 0.0
    dense_drop = 0.0
    if len(dense_scores):
        dense_drop = dense_top_score - float(dense_scores[min(_TOP, len(dense_scores)) - 1])
    sparse_drop = 0.0
    if len(sparse_scores) and sparse_scores[0] > 0.0:
        tenth = float(sparse_scores[min(_TOP, len(sparse_scores)) - 1])
        sparse_drop = (float(sparse_scores[0]) - tenth) / float(sparse_scores[0])
    # Sets, not np.intersect1d: ten times cheaper on ten items.
    overlap = len(set(sparse_top[:_TOP].tolist()) & set(dense_top[:_TOP].tolist())) / _TOP
    terms = len(stats.doc_freqs)
    mean_idf = 0.0
    if terms and stats.num_docs > 0:
        df = np.asarray(stats.doc_freqs, dtype=np.float64)
        idfs = np.log1p((stats.num_docs - df + 0.5) / (df + 0.5))
        mean_idf = float(idfs.mean()) / idf(0, stats.num_docs)
    return np.array(
        [dense_top_score, dense_drop, sparse_drop, overlap, math.log1p(terms), mean_idf],
        dtype=np.float64,
    )


@dataclass(frozen=True, slots=True, eq=False)
class AdaptiveModel:
    """A multinomial logistic model over candidate alphas (coefficients of standardised
    features); `alpha` is the expected alpha under its distribution."""

    alphas: NDArray[np.float64]  # (k,)
    mean: NDArray[np.float64]  # (f,)
    scale: NDArray[np.float64]  # (f,)
    weights: NDArray[np.float64]  # (k, f)
    bias: NDArray[np.float64]  # (k,)
    normalization: Normalization
    source: str = "<memory>"

    def alpha(self, features: NDArray[np.float64]) -> float:
        """The dense-side weight for a query with ``features``, in [0, 1]."""
        z = (features - self.mean) / self.scale
        logits = self.weights @ z + self.bias
        logits -= logits.max()
        p = np.exp(logits)
        return float(np.clip((p @ self.alphas) / p.sum(), 0.0, 1.0))

    def to_json(self) -> dict[str, object]:
        """The model file's content."""
        return {
            "format": MODEL_FORMAT,
            "features": list(FEATURE_NAMES),
            "normalization": self.normalization.value,
            "alphas": self.alphas.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
        }

    @classmethod
    def from_json(cls, raw: object, source: str = "<memory>") -> AdaptiveModel:
        """The model of a parsed model file.

        Raises:
            AdaptiveModelError: a field is missing, of the wrong shape or not finite, or the
                file's format or feature list is not this version's.
        """

        def fail(problem: str) -> AdaptiveModelError:
            return AdaptiveModelError(f"adaptive fusion model {source}: {problem}")

        if not isinstance(raw, dict):
            raise fail("expected a JSON object")
        if raw.get("format") != MODEL_FORMAT:
            raise fail(f"format must be {MODEL_FORMAT!r} (got {raw.get('format')!r})")
        if raw.get("features") != list(FEATURE_NAMES):
            raise fail(f"features must be {list(FEATURE_NAMES)} (got {raw.get('features')!r})")
        try:
            normalization = Normalization(raw.get("normalization"))
        except ValueError:
            raise fail(f"unknown normalization {raw.get('normalization')!r}") from None

        def array(name: str, shape: tuple[int, ...]) -> NDArray[np.float64]:
            try:
                value = np.asarray(raw.get(name), dtype=np.float64)
            except (TypeError, ValueError):
                raise fail(f"{name} must be numbers") from None
            if value.shape != shape:
                raise fail(f"{name} must have shape {shape} (got {value.shape})")
            if not np.isfinite(value).all():
                raise fail(f"{name} holds a non-finite number")
            return value

        raw_alphas = raw.get("alphas")
        k = len(raw_alphas) if isinstance(raw_alphas, list) else 0
        if k < 1:
            raise fail("alphas must be a non-empty list")
        f = len(FEATURE_NAMES)
        alphas = array("alphas", (k,))
        if ((alphas < 0.0) | (alphas > 1.0)).any():
            raise fail("alphas must be in [0, 1]")
        scale = array("scale", (f,))
        if (scale <= 0.0).any():
            raise fail("scale must be > 0")
        return cls(
            alphas=alphas,
            mean=array("mean", (f,)),
            scale=scale,
            weights=array("weights", (k, f)),
            bias=array("bias", (k,)),
            normalization=normalization,
            source=source,
        )

    @classmethod
    def load(cls, path: Path) -> AdaptiveModel:
        """The model in the JSON file at ``path``.

        Raises:
            AdaptiveModelError: the file is missing, unreadable, not JSON or malformed (the
                message names the file).
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AdaptiveModelError(
                f"adaptive fusion model {path}: cannot read it ({reason})"
            ) from exc
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdaptiveModelError(
                f"adaptive fusion model {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from exc
        return cls.from_json(raw, source=str(path))

    def save(self, path: Path) -> None:
        """Write the model file atomically (a temporary file renamed into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        temporary.replace(path)


@functools.lru_cache(maxsize=8)
def load_model(path: Path | None = None) -> AdaptiveModel:
    """The model at ``path`` (None: the shipped one), read once per process and path.

    Raises:
        AdaptiveModelError: as `AdaptiveModel.load` (a failed load is not cached).
    """
    return AdaptiveModel.load(DEFAULT_MODEL_PATH if path is None else path)


def _columns(name: str, hits: Sequence[ScoredDoc]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """A list's scores and ordinals (an arm's `RankedList` as is: fusion checks it next)."""
    if isinstance(hits, RankedList):
        return hits.scores, hits.ordinals
    columns = arm_columns(name, hits)
    return columns.scores, columns.ordinals


def choose_alpha(
    model: AdaptiveModel,
    stats: QueryStats,
    sparse: Sequence[ScoredDoc],
    dense: Sequence[ScoredDoc],
) -> AdaptiveChoice:
    """The model's alpha for a query whose arms returned ``sparse`` and ``dense`` (best
    first), with the features behind it."""
    s_scores, s_ordinals = _columns("sparse", sparse)
    d_scores, d_ordinals = _columns("dense", dense)
    features = query_features(stats, s_scores, d_scores, s_ordinals, d_ordinals)
    return AdaptiveChoice(
        alpha=model.alpha(features),
        features=dict(zip(FEATURE_NAMES, features.tolist(), strict=True)),
    )


def fuse_adaptive(
    sparse: Sequence[ScoredDoc],
    dense: Sequence[ScoredDoc],
    *,
    model: AdaptiveModel,
    stats: QueryStats,
    doc_id: Callable[[int], str],
    limit: int | None = None,
) -> tuple[list[FusedDoc], AdaptiveChoice]:
    """Interpolate the lists (`fuse_interpolate`, the model's normalisation) with the alpha
    `choose_alpha` picks; returns the fused list and the choice."""
    choice = choose_alpha(model, stats, sparse, dense)
    fused = fuse_interpolate(
        sparse,
        dense,
        alpha=choice.alpha,
        normalization=model.normalization,
        doc_id=doc_id,
        limit=limit,
    )
    return fused, choice
