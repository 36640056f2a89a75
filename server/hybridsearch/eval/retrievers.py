"""Evaluation runs in-process: a run's settings (`RunSpec`), the engine retriever, and a cache
of query vectors.

A `RunSpec` describes each query as the domain's `SearchRequestSpec`; the engine retriever
resolves it with the server's own `resolve_query`, so a run is defaulted and validated exactly
as the server would do it (the gRPC retriever, `cli.eval_client`, sends the same spec).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from hybridsearch.config import ServerSettings
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.request import (
    FusionOptions,
    PrfOptions,
    SearchRequestSpec,
    resolve_query,
)
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.types import FusionMethod, Normalization, PrfStage, RetrievalMode, VectorPrfMethod

E = TypeVar("E", bound=enum.Enum)
# The values a RunSpec's string settings (and the eval flags) may take: the domain enums' values.
MODES = tuple(m.value for m in RetrievalMode)
FUSIONS = tuple(m.value for m in FusionMethod)
NORMALIZATIONS = tuple(m.value for m in Normalization)
VECTOR_PRF = tuple(m.value for m in VectorPrfMethod if m is not VectorPrfMethod.NONE)
PRF_STAGES = tuple(m.value for m in PrfStage)


class _Hit(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def score(self) -> float: ...


class RankedHits(Protocol):
    """A result with ranked hits: a domain `SearchResult` or a proto SearchResponse."""

    @property
    def hits(self) -> Sequence[_Hit]: ...


@dataclass(frozen=True, slots=True)
class RunSpec:
    """The retrieval settings of one run; None leaves a setting to the server default."""

    mode: str = "hybrid"
    fusion: str | None = None
    alpha: float | None = None
    normalization: str | None = None
    rrf_k: int | None = None
    sparse_depth: int | None = None
    dense_depth: int | None = None
    rm3: bool = False
    fb_docs: int | None = None
    fb_terms: int | None = None
    original_query_weight: float | None = None
    vector_prf: str | None = None
    vector_depth: int | None = None
    rocchio_alpha: float | None = None
    rocchio_beta: float | None = None
    prf_stage: str | None = None

    @classmethod
    def from_namespace(cls, values: Any) -> RunSpec:
        """The spec of parsed flags whose ``dest`` names are this class's fields."""
        return cls(**{f.name: getattr(values, f.name) for f in dataclasses.fields(cls)})

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def request(self, text: str, top_k: int) -> SearchRequestSpec:
        """The request for one query under this spec (unset settings: the server default)."""
        return SearchRequestSpec(
            text=text,
            top_k=top_k,
            mode=RetrievalMode(self.mode),
            fusion=FusionOptions(
                method=_option(FusionMethod, self.fusion),
                alpha=self.alpha,
                normalization=_option(Normalization, self.normalization),
                rrf_k=self.rrf_k,
                sparse_depth=self.sparse_depth,
                dense_depth=self.dense_depth,
            ),
            prf=PrfOptions(
                rm3=self.rm3,
                vector_method=_option(VectorPrfMethod, self.vector_prf),
                fb_docs=self.fb_docs,
                fb_terms=self.fb_terms,
                original_query_weight=self.original_query_weight,
                vector_depth=self.vector_depth,
                rocchio_alpha=self.rocchio_alpha,
                rocchio_beta=self.rocchio_beta,
                hybrid_stage=_option(PrfStage, self.prf_stage),
            ),
        )

    def label(self) -> str:
        """A short name for tables, e.g. ``hybrid interpolation min_max a=0.5 +rm3``."""
        parts = [self.mode]
        if self.mode == "hybrid":
            parts.append(self.fusion or "interpolation")
            if self.fusion not in ("rrf", "adaptive"):
                parts.append(self.normalization or "min_max")
                if self.alpha is not None:
                    parts.append(f"a={self.alpha:g}")
        if self.rm3 and self.mode != "dense":
            parts.append("+rm3")
        if self.vector_prf is not None and self.mode != "sparse":
            parts.append(f"+{self.vector_prf}")
        if self.mode == "hybrid" and (self.rm3 or self.vector_prf):
            parts.append(f"({self.prf_stage or 'after'})")
        return " ".join(parts)


def _option(choices: type[E], name: str | None) -> E | None:
    """The enum member named by a flag's value (its ``value``), or None when unset."""
    return None if name is None else choices(name)


def ranked(result: RankedHits) -> dict[str, float]:
    """docid → score of a result's hits."""
    return {hit.id: float(hit.score) for hit in result.hits}


class EngineRetriever:
    """Runs a spec on an in-process engine (queries of a chunk share one encoder run)."""

    def __init__(
        self, engine: HybridSearcher, spec: RunSpec, settings: ServerSettings | None = None
    ) -> None:
        self._engine = engine
        self._spec = spec
        settings = settings or ServerSettings()
        self._defaults = settings.query_defaults
        self._limits = settings.request_limits

    def retrieve(self, queries: Mapping[str, str], *, top_k: int) -> dict[str, dict[str, float]]:
        """qid → {docid: score} for each query.

        Raises:
            InvalidArgumentError: the spec is invalid (same rules as the server).
        """
        batch = [
            resolve_query(self._spec.request(text, top_k), self._defaults, self._limits)
            for text in queries.values()
        ]
        results = self._engine.search_batch(batch)
        return {qid: ranked(r) for qid, r in zip(queries, results, strict=True)}


class CachedQueryEncoder:
    """An :class:`~hybridsearch.encoders.base.Encoder` that remembers query vectors by text.

    Evaluation runs the same queries under many settings; the vectors do not change, so they
    are encoded once (the chunks of a run are the same each time, so so are the vectors).
    """

    def __init__(self, inner: Encoder) -> None:
        self._inner = inner
        self._vectors: dict[str, NDArray[np.float32]] = {}

    @property
    def model_id(self) -> str:
        """The wrapped encoder's model id."""
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        """The wrapped encoder's dimension."""
        return self._inner.dimension

    @property
    def provider(self) -> str:
        """The wrapped encoder's execution provider."""
        return self._inner.provider

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Vectors of ``texts``, encoding only those not seen before (in one batch)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if todo:
            for text, vector in zip(todo, self._inner.encode_queries(todo), strict=True):
                self._vectors[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        """Documents are not cached."""
        return self._inner.encode_documents(texts, batch_size=batch_size)
