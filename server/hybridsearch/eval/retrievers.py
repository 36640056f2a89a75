"""Retrievers for evaluation: the engine in-process or a server over gRPC, one request shape.

Both build the same ``SearchRequest`` from a :class:`RunSpec`; the in-process one converts it
with the server's own ``query_from_proto``, so a run is validated and defaulted exactly as the
server would do it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridsearch.api.convert import query_from_proto
from hybridsearch.config import ServerSettings
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.types import SearchResult
from hybridsearch.v1 import search_pb2 as pb

MODES = {
    "hybrid": pb.RETRIEVAL_MODE_HYBRID,
    "dense": pb.RETRIEVAL_MODE_DENSE,
    "sparse": pb.RETRIEVAL_MODE_SPARSE,
}
FUSIONS = {"interpolation": pb.FUSION_METHOD_INTERPOLATION, "rrf": pb.FUSION_METHOD_RRF}
NORMALIZATIONS = {
    "min_max": pb.SCORE_NORMALIZATION_MIN_MAX,
    "z_score": pb.SCORE_NORMALIZATION_Z_SCORE,
    "none": pb.SCORE_NORMALIZATION_NONE,
}
VECTOR_PRF = {"average": pb.VECTOR_PRF_METHOD_AVERAGE, "rocchio": pb.VECTOR_PRF_METHOD_ROCCHIO}
PRF_STAGES = {
    "before": pb.PRF_STAGE_BEFORE,
    "after": pb.PRF_STAGE_AFTER,
    "both": pb.PRF_STAGE_BOTH,
}
# RunSpec fields that map one-to-one onto an `optional` proto field of the same name.
_FUSION_OPTIONALS = ("alpha", "rrf_k", "sparse_depth", "dense_depth")
_PRF_OPTIONALS = (
    "fb_docs",
    "fb_terms",
    "original_query_weight",
    "vector_depth",
    "rocchio_alpha",
    "rocchio_beta",
)


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

    def request(self, text: str, top_k: int) -> pb.SearchRequest:
        """The SearchRequest for one query under this spec."""
        request = pb.SearchRequest(query=text, top_k=top_k, mode=MODES[self.mode])
        fusion = request.fusion
        if self.fusion is not None:
            fusion.method = FUSIONS[self.fusion]
        if self.normalization is not None:
            fusion.normalization = NORMALIZATIONS[self.normalization]
        for name in _FUSION_OPTIONALS:
            if getattr(self, name) is not None:
                setattr(fusion, name, getattr(self, name))
        prf = request.prf
        prf.rm3 = self.rm3
        if self.vector_prf is not None:
            prf.vector_method = VECTOR_PRF[self.vector_prf]
        if self.prf_stage is not None:
            prf.hybrid_stage = PRF_STAGES[self.prf_stage]
        for name in _PRF_OPTIONALS:
            if getattr(self, name) is not None:
                setattr(prf, name, getattr(self, name))
        return request

    def label(self) -> str:
        """A short name for tables, e.g. ``hybrid interpolation min_max a=0.5 +rm3``."""
        parts = [self.mode]
        if self.mode == "hybrid":
            parts.append(self.fusion or "interpolation")
            if self.fusion != "rrf":
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


def _ranked(result: SearchResult | pb.SearchResponse) -> dict[str, float]:
    return {hit.id: float(hit.score) for hit in result.hits}


class EngineRetriever:
    """Runs a spec on an in-process engine (queries of a chunk share one encoder run)."""

    def __init__(
        self, engine: HybridSearcher, spec: RunSpec, settings: ServerSettings | None = None
    ) -> None:
        self._engine = engine
        self._spec = spec
        self._settings = settings or ServerSettings()

    def retrieve(self, queries: Mapping[str, str], *, top_k: int) -> dict[str, dict[str, float]]:
        """qid → {docid: score} for each query.

        Raises:
            InvalidArgumentError: the spec is invalid (same rules as the server).
        """
        batch = [
            query_from_proto(self._spec.request(text, top_k), self._settings)
            for text in queries.values()
        ]
        results = self._engine.search_batch(batch)
        return {qid: _ranked(r) for qid, r in zip(queries, results, strict=True)}


class GrpcRetriever:
    """Runs a spec against a server with BatchSearch (one call per chunk of queries)."""

    def __init__(self, stub: Any, spec: RunSpec, *, timeout_s: float = 300.0) -> None:
        self._stub = stub
        self._spec = spec
        self._timeout_s = timeout_s

    def retrieve(self, queries: Mapping[str, str], *, top_k: int) -> dict[str, dict[str, float]]:
        """qid → {docid: score} for each query (gRPC errors propagate)."""
        request = pb.BatchSearchRequest(
            requests=[self._spec.request(text, top_k) for text in queries.values()]
        )
        response = self._stub.BatchSearch(request, timeout=self._timeout_s)
        return {qid: _ranked(r) for qid, r in zip(queries, response.responses, strict=True)}


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
