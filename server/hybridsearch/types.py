"""Domain types shared by the engine, its arms and the API layer (no grpc here)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Device(enum.Enum):
    """Where the encoder runs."""

    AUTO = "auto"  # CUDA when onnxruntime offers it, else CPU
    CPU = "cpu"
    CUDA = "cuda"  # CUDA or an error: never a silent CPU fallback


class RetrievalMode(enum.Enum):
    """Which arms a query runs."""

    HYBRID = "hybrid"
    DENSE = "dense"
    SPARSE = "sparse"


class FusionMethod(enum.Enum):
    """How the sparse and dense lists are combined."""

    INTERPOLATION = "interpolation"
    RRF = "rrf"


class Normalization(enum.Enum):
    """Per-list score normalisation applied before interpolation."""

    MIN_MAX = "min_max"
    Z_SCORE = "z_score"
    NONE = "none"


class StoredField(enum.Enum):
    """Stored document fields a hit can carry."""

    TITLE = "title"
    TEXT = "text"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class Document:
    """A document as ingested: external id, title, body text and a JSON-object metadata."""

    id: str
    title: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FusionSettings:
    """Fully resolved fusion settings (every value set)."""

    method: FusionMethod = FusionMethod.INTERPOLATION
    alpha: float = 0.5
    normalization: Normalization = Normalization.MIN_MAX
    rrf_k: int = 60
    rrf_sparse_weight: float = 1.0
    rrf_dense_weight: float = 1.0
    sparse_depth: int = 1000
    dense_depth: int = 1000


@dataclass(frozen=True, slots=True)
class Query:
    """One fully resolved query (defaults already applied by the caller)."""

    text: str
    top_k: int = 10
    mode: RetrievalMode = RetrievalMode.HYBRID
    fusion: FusionSettings = field(default_factory=FusionSettings)
    explain: bool = False
    return_fields: frozenset[StoredField] = frozenset()


@dataclass(frozen=True, slots=True)
class ScoredDoc:
    """One entry of an arm's ranked list: internal ordinal and raw score."""

    ordinal: int
    score: float


@dataclass(frozen=True, slots=True)
class ArmScore:
    """One arm's view of a fused hit."""

    raw_score: float
    rank: int
    normalized_score: float


@dataclass(frozen=True, slots=True)
class FusedDoc:
    """One entry of a fused list: ordinal, fused score and each arm's view (None: not retrieved)."""

    ordinal: int
    score: float
    sparse: ArmScore | None
    dense: ArmScore | None


@dataclass(frozen=True, slots=True)
class HitExplanation:
    """Why a hit ranked where it did."""

    sparse: ArmScore | None
    dense: ArmScore | None
    fused_score: float


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked document of a result."""

    id: str
    score: float
    rank: int
    title: str | None = None
    text: str | None = None
    metadata: Mapping[str, Any] | None = None
    explanation: HitExplanation | None = None


@dataclass(slots=True)
class StageTimings:
    """Wall-clock stage durations of one query, in microseconds."""

    total_us: int = 0
    encode_us: int = 0
    dense_us: int = 0
    sparse_us: int = 0
    fusion_us: int = 0
    fetch_us: int = 0


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The ranked result of one query, with its timings and the query as applied."""

    hits: list[Hit]
    timings: StageTimings
    applied: Query
